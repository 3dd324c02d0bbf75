// Ultralytics YOLO label files: one object a line, class id then coordinates normalized to the
// image size. Detection: cx cy w h; segmentation: a polygon x1 y1 x2 y2 ...; pose: cx cy w h then
// the keypoints (x y [visibility]). Turned into COCO-style ground truth in pixels, with the area
// COCO would store (the mask's for polygons, the box's otherwise).
import type { TaskType } from '../../contract/index.ts';
import type { CocoGroundTruth } from '../detection/coco-eval.ts';
import { rleFromPolygon } from '../segmentation/polygon.ts';
import { rleArea, type Rle } from '../segmentation/rle.ts';

export interface YoloLabelOptions {
  task: TaskType;
  numClasses: number;
  kptShape?: [number, 2 | 3] | undefined;
  imageId: number;
  /** First annotation id to hand out (ids must be unique and non-zero across the dataset). */
  firstId: number;
  width: number;
  height: number;
}

export function parseYoloLabels(text: string, o: YoloLabelOptions): CocoGroundTruth[] {
  const out: CocoGroundTruth[] = [];
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  lines.forEach((line, n) => {
    const v = line.split(/\s+/).map(Number);
    // As np.array(..., dtype=np.float32) reads them.
    const v32 = v.map((x) => Math.fround(x));
    const where = `label line ${n + 1}`;
    if (v.some((x) => !Number.isFinite(x))) throw new Error(`${where} has a value that is not a number: "${line.slice(0, 80)}"`);
    const cls = v[0]!;
    if (!Number.isInteger(cls) || cls < 0 || cls >= o.numClasses) throw new Error(`${where}: class ${cls} is not one of the model's ${o.numClasses} classes`);
    const base = { id: o.firstId + n, image_id: o.imageId, category_id: cls, iscrowd: 0 as const };
    const W = o.width;
    const H = o.height;
    if (o.task === 'instance_segmentation' && v.length >= 7 && (v.length - 1) % 2 === 0) {
      const polygon = v.slice(1).map((x, i) => (i % 2 === 0 ? x * W : x * H));
      const xs = polygon.filter((_, i) => i % 2 === 0);
      const ys = polygon.filter((_, i) => i % 2 === 1);
      const segmentation: Rle = rleFromPolygon(polygon, H, W);
      const [x0, y0] = [Math.min(...xs), Math.min(...ys)];
      out.push({
        ...base,
        bbox: [x0, y0, Math.max(...xs) - x0, Math.max(...ys) - y0],
        area: rleArea(segmentation),
        segmentation,
        yolo: { xywh: segmentBox(v32.slice(1)) },
      });
      return;
    }
    if (v.length < 5) throw new Error(`${where} needs class cx cy w h, got ${v.length} values`);
    const [cx, cy, w, h] = [v[1]! * W, v[2]! * H, v[3]! * W, v[4]! * H];
    const bbox: [number, number, number, number] = [cx - w / 2, cy - h / 2, w, h];
    const xywh: [number, number, number, number] = [v32[1]!, v32[2]!, v32[3]!, v32[4]!];
    if (o.task === 'instance_segmentation') {
      // A box line in a segmentation dataset: its mask is the box (pycocotools' frBbox).
      const [x0, y0] = bbox;
      const segmentation = rleFromPolygon([x0, y0, x0, y0 + h, x0 + w, y0 + h, x0 + w, y0], H, W);
      out.push({ ...base, bbox, area: rleArea(segmentation), segmentation, yolo: { xywh } });
      return;
    }
    if (o.task === 'pose_estimation') {
      const [k, d] = o.kptShape ?? [17, 3];
      if (v.length !== 5 + k * d) throw new Error(`${where} needs class cx cy w h and ${k} keypoints of ${d} values (${5 + k * d} values), got ${v.length}`);
      const keypoints: number[] = [];
      // Ultralytics: normalized float32; without a visibility column, visible unless x or y < 0.
      const yoloKeypoints: number[] = [];
      for (let i = 0; i < k; i++) {
        const [nx, ny] = [v32[5 + i * d]!, v32[6 + i * d]!];
        yoloKeypoints.push(nx, ny, d === 3 ? v32[7 + i * d]! : nx < 0 || ny < 0 ? 0 : 1);
      }
      for (let i = 0; i < k; i++) {
        const x = v[5 + i * d]! * W;
        const y = v[6 + i * d]! * H;
        // Without a visibility column, a keypoint at (0, 0) is unlabelled (Ultralytics' convention).
        const vis = d === 3 ? v[7 + i * d]! : x === 0 && y === 0 ? 0 : 2;
        keypoints.push(vis > 0 ? x : 0, vis > 0 ? y : 0, vis);
      }
      out.push({
        ...base,
        bbox,
        area: w * h,
        keypoints,
        num_keypoints: keypoints.filter((_, i) => i % 3 === 2 && keypoints[i]! > 0).length,
        yolo: { xywh, keypoints: yoloKeypoints },
      });
      return;
    }
    out.push({ ...base, bbox, area: w * h, yolo: { xywh } });
  });
  return out;
}

/** segments2boxes of one polygon (float32 x, y pairs): its extent as centre and size, in float32. */
function segmentBox(polygon: number[]): [number, number, number, number] {
  const xs = polygon.filter((_, i) => i % 2 === 0);
  const ys = polygon.filter((_, i) => i % 2 === 1);
  const [x1, y1, x2, y2] = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  const f32 = Math.fround;
  return [f32(f32(x1 + x2) / 2), f32(f32(y1 + y2) / 2), f32(x2 - x1), f32(y2 - y1)];
}
