// How predictions are drawn, the same in the runner's visualizations and in the dashboard:
// Ultralytics' default palette (one colour per class id, cycled) and COCO's person skeleton.
// No dependency: the dashboard bundles this file.

export const CLASS_PALETTE = [
  'FF3838',
  'FF9D97',
  'FF701F',
  'FFB21D',
  'CFD231',
  '48F90A',
  '92CC17',
  '3DDB86',
  '1A9334',
  '00D4BB',
  '2C99A8',
  '00C2FF',
  '344593',
  '6473FF',
  '0018EC',
  '8438FF',
  '520085',
  'CB38FF',
  'FF95C8',
  'FF37C7',
] as const;

/** A class id's colour, `RRGGBB`. */
export const classHex = (id: number): string => CLASS_PALETTE[id % CLASS_PALETTE.length]!;

/** COCO's person skeleton (1-based keypoint pairs), as pycocotools draws it. */
export const COCO_SKELETON: ReadonlyArray<readonly [number, number]> = [
  [16, 14],
  [14, 12],
  [17, 15],
  [15, 13],
  [12, 13],
  [6, 12],
  [7, 13],
  [6, 7],
  [6, 8],
  [7, 9],
  [8, 10],
  [9, 11],
  [2, 3],
  [1, 2],
  [1, 3],
  [2, 4],
  [3, 5],
  [4, 6],
  [5, 7],
];
