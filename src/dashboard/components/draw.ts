// Drawing a prediction over its image on a canvas: boxes with labels, instance masks (COCO
// compressed RLE), keypoint skeletons (COCO's 17-point skeleton when there are 17), a semantic
// mask PNG, an explanation's overlay. The palette, skeleton and RLE reading are the runner's.
import { rleFromString } from '../../contract/coco-rle.ts';
import { classHex, COCO_SKELETON } from '../../contract/drawing.ts';

export const colorOf = (i: number) => `#${classHex(i)}`;

function drawMask(ctx: CanvasRenderingContext2D, rle: { size: [number, number]; counts: string }, color: string): void {
  const [h, w] = rle.size;
  const image = ctx.getImageData(0, 0, w, h);
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
  let pos = 0;
  rleFromString(rle.counts, h, w).counts.forEach((run, i) => {
    if (i % 2 === 1)
      for (let k = pos; k < pos + run; k++) {
        // Column-major: k = x * h + y.
        const x = Math.floor(k / h);
        const y = k % h;
        const o = (y * w + x) * 4;
        image.data[o] = (image.data[o]! + r!) / 2;
        image.data[o + 1] = (image.data[o + 1]! + g!) / 2;
        image.data[o + 2] = (image.data[o + 2]! + b!) / 2;
      }
    pos += run;
  });
  ctx.putImageData(image, 0, 0);
}

export interface Detection {
  class_id: number;
  class_name: string;
  confidence: number;
  bbox: [number, number, number, number];
  mask?: { size: [number, number]; counts: string };
  keypoints?: number[];
}

export function drawDetections(ctx: CanvasRenderingContext2D, detections: Detection[]): void {
  for (const d of detections) if (d.mask) drawMask(ctx, d.mask, colorOf(d.class_id));
  ctx.lineWidth = Math.max(2, ctx.canvas.width / 300);
  ctx.font = `${Math.max(12, Math.round(ctx.canvas.width / 45))}px sans-serif`;
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.bbox;
    const color = colorOf(d.class_id);
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${d.class_name} ${d.confidence.toFixed(2)}`;
    const tw = ctx.measureText(text).width + 6;
    const th = parseInt(ctx.font, 10) + 4;
    ctx.fillStyle = color;
    ctx.fillRect(x1, Math.max(0, y1 - th), tw, th);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x1 + 3, Math.max(th - 4, y1 - 4));
    if (d.keypoints) {
      const n = d.keypoints.length / 3;
      const at = (i: number) => [d.keypoints![3 * i]!, d.keypoints![3 * i + 1]!, d.keypoints![3 * i + 2]!] as const;
      if (n === 17)
        for (const [a, b] of COCO_SKELETON) {
          const [ax, ay, as] = at(a! - 1);
          const [bx, by, bs] = at(b! - 1);
          if (as < 0.5 || bs < 0.5) continue;
          ctx.beginPath();
          ctx.moveTo(ax, ay);
          ctx.lineTo(bx, by);
          ctx.stroke();
        }
      for (let i = 0; i < n; i++) {
        const [x, y, s] = at(i);
        if (s < 0.5) continue;
        ctx.beginPath();
        ctx.arc(x, y, ctx.lineWidth * 1.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
}
