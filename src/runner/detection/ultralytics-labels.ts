// Labels in the network's input space, as `yolo val` compares predictions with them: YOLO label
// values (normalized, float32) through LetterBox._update_labels (to corners, times the loaded
// image's size, times the letterbox ratio, plus the padding), Format (centre and size, divided by
// the input size) and the validator's _prepare_batch (to corners, times the input size), every
// step in float32 as Ultralytics' numpy and torch arrays compute it. COCO labels (pixels) take
// the same gains and padding; Ultralytics itself would read them through its converter's
// normalized text files.
import type { CocoGroundTruth } from './coco-eval.ts';
import type { Letterbox } from './letterbox.ts';

const f32 = Math.fround;

export interface NetworkLabels {
  boxes: Float32Array;
  classes: Int32Array;
  /** K x (x, y, v) per label, when the labels have keypoints. */
  keypoints?: Float32Array;
}

/** One coordinate through LetterBox._update_labels: denormalize, scale, add the padding. */
function chain(v: number, loaded: number, ratio: number, pad: number): number {
  return f32(f32(f32(v * loaded) * f32(ratio)) + pad);
}

export function labelsToNetwork(
  gts: CocoGroundTruth[],
  o: { geometry: Letterbox; original: { width: number; height: number }; inputSize: [number, number]; classOf: (categoryId: number) => number | undefined },
): NetworkLabels {
  const { geometry: g, inputSize } = o;
  const [H, W] = inputSize;
  const { width: w1, height: h1, ratio } = g.loaded;
  const boxes: number[] = [];
  const classes: number[] = [];
  const keypoints: number[] = [];
  let withKeypoints = false;
  for (const gt of gts) {
    const cls = o.classOf(gt.category_id);
    if (cls === undefined) continue;
    // Normalized centre and size: the label file's float32 values, or from the pixel box.
    const [cx, cy, w, h] = gt.yolo?.xywh ?? [
      f32((gt.bbox[0] + gt.bbox[2] / 2) / o.original.width),
      f32((gt.bbox[1] + gt.bbox[3] / 2) / o.original.height),
      f32(gt.bbox[2] / o.original.width),
      f32(gt.bbox[3] / o.original.height),
    ];
    // xywh2xyxy, denormalize, scale, add_padding (LetterBox._update_labels).
    const x1 = chain(f32(cx - f32(w / 2)), w1, ratio, g.left);
    const y1 = chain(f32(cy - f32(h / 2)), h1, ratio, g.top);
    const x2 = chain(f32(cx + f32(w / 2)), w1, ratio, g.left);
    const y2 = chain(f32(cy + f32(h / 2)), h1, ratio, g.top);
    // Format: xyxy2xywh, / input size; _prepare_batch: xywh2xyxy, * input size.
    const ncx = f32(f32(f32(x1 + x2) / 2) / W);
    const ncy = f32(f32(f32(y1 + y2) / 2) / H);
    const nw = f32(f32(x2 - x1) / W);
    const nh = f32(f32(y2 - y1) / H);
    boxes.push(f32(f32(ncx - f32(nw / 2)) * W), f32(f32(ncy - f32(nh / 2)) * H), f32(f32(ncx + f32(nw / 2)) * W), f32(f32(ncy + f32(nh / 2)) * H));
    classes.push(cls);
    const kpts = gt.yolo?.keypoints ?? gt.keypoints?.map((v, i) => (i % 3 === 0 ? f32(v / o.original.width) : i % 3 === 1 ? f32(v / o.original.height) : v));
    if (kpts) {
      withKeypoints = true;
      for (let i = 0; i < kpts.length; i += 3) {
        // denormalize, scale, add_padding; Format divides by the input size; the validator multiplies back.
        const x = f32(f32(chain(kpts[i]!, w1, ratio, g.left) / W) * W);
        const y = f32(f32(chain(kpts[i + 1]!, h1, ratio, g.top) / H) * H);
        keypoints.push(x, y, kpts[i + 2]!);
      }
    }
  }
  return { boxes: Float32Array.from(boxes), classes: Int32Array.from(classes), ...(withKeypoints ? { keypoints: Float32Array.from(keypoints) } : {}) };
}
