// Drawing on decoded RGB pixels in place: the few shapes a picture of predictions needs (filled and
// outlined boxes, thick lines, discs, translucent fills, glyph masks). Cheap enough to run per
// image beside inference, where rasterising a full-size SVG per picture cost more than decoding
// and encoding it. No anti-aliasing except the glyphs' own coverage.
import type { Glyph } from './glyphs.ts';

export type Rgb = readonly [number, number, number];

export class RgbCanvas {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
  /** Bytes from a row's first pixel to the next row's. */
  readonly stride: number;

  /**
   * `data` holds `width` x `height` RGB pixels, rows `stride` bytes apart (a window of a larger
   * image, such as the letterboxed input, is drawn on where it lies); drawing changes it.
   */
  constructor(data: Buffer, width: number, height: number, stride = width * 3) {
    if (
      stride < width * 3 ||
      stride % 3 !== 0 ||
      data.length < (height - 1) * stride + width * 3 ||
      (stride === width * 3 && data.length !== width * height * 3)
    )
      throw new Error(`expected ${width}x${height} RGB pixels${stride === width * 3 ? '' : ` in rows ${stride} bytes apart`}, got ${data.length} bytes`);
    this.data = data;
    this.width = width;
    this.height = height;
    this.stride = stride;
  }

  /** Pixels x1 <= x < x2, y1 <= y < y2 (rounded, clipped) set to `colour`. */
  fillRect(x1: number, y1: number, x2: number, y2: number, colour: Rgb): void {
    const [ax, ay, bx, by] = this.#clip(x1, y1, x2, y2);
    const [r, g, b] = colour;
    for (let y = ay; y < by; y++) {
      for (let o = y * this.stride + ax * 3, end = y * this.stride + bx * 3; o < end; o += 3) {
        this.data[o] = r;
        this.data[o + 1] = g;
        this.data[o + 2] = b;
      }
    }
  }

  /** A box outline `stroke` pixels wide, centred on the box's edges (as an SVG stroke is). */
  strokeRect(x1: number, y1: number, x2: number, y2: number, stroke: number, colour: Rgb): void {
    const h = stroke / 2;
    this.fillRect(x1 - h, y1 - h, x2 + h, y1 + h, colour);
    this.fillRect(x1 - h, y2 - h, x2 + h, y2 + h, colour);
    this.fillRect(x1 - h, y1 + h, x1 + h, y2 - h, colour);
    this.fillRect(x2 - h, y1 + h, x2 + h, y2 - h, colour);
  }

  /** A line `stroke` pixels thick, as squares stamped a pixel apart along it. */
  line(x1: number, y1: number, x2: number, y2: number, stroke: number, colour: Rgb): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x2 - x1), Math.abs(y2 - y1))));
    const h = stroke / 2;
    for (let i = 0; i <= steps; i++) {
      const x = x1 + ((x2 - x1) * i) / steps;
      const y = y1 + ((y2 - y1) * i) / steps;
      this.fillRect(x - h, y - h, x + h, y + h, colour);
    }
  }

  /** Pixels whose centre is within `radius` of (cx, cy). */
  disc(cx: number, cy: number, radius: number, colour: Rgb): void {
    const [ax, ay, bx, by] = this.#clip(cx - radius, cy - radius, cx + radius + 1, cy + radius + 1);
    const r2 = radius * radius;
    for (let y = ay; y < by; y++) {
      for (let x = ax; x < bx; x++) {
        const dx = x + 0.5 - cx;
        const dy = y + 0.5 - cy;
        if (dx * dx + dy * dy <= r2) this.data.set(colour, y * this.stride + x * 3);
      }
    }
  }

  /** `colour` over pixel (x, y) at opacity `alpha` / 255. */
  blendPixel(x: number, y: number, colour: Rgb, alpha: number): void {
    const o = y * this.stride + x * 3;
    const keep = 255 - alpha;
    this.data[o] = Math.round((colour[0] * alpha + this.data[o]! * keep) / 255);
    this.data[o + 1] = Math.round((colour[1] * alpha + this.data[o + 1]! * keep) / 255);
    this.data[o + 2] = Math.round((colour[2] * alpha + this.data[o + 2]! * keep) / 255);
  }

  /** `colour` through a glyph's coverage, its top-left corner at (x, y); returns the x of the next glyph. */
  glyph(g: Glyph, x: number, y: number, colour: Rgb): number {
    for (let gy = 0; gy < g.height; gy++) {
      const py = y + gy;
      if (py < 0 || py >= this.height) continue;
      for (let gx = 0; gx < g.width; gx++) {
        const a = g.alpha[gy * g.width + gx]!;
        const px = x + gx;
        if (a === 0 || px < 0 || px >= this.width) continue;
        this.blendPixel(px, py, colour, a);
      }
    }
    return x + g.advance;
  }

  #clip(x1: number, y1: number, x2: number, y2: number): [number, number, number, number] {
    const cx = (v: number) => Math.min(Math.max(Math.round(v), 0), this.width);
    const cy = (v: number) => Math.min(Math.max(Math.round(v), 0), this.height);
    return [cx(x1), cy(y1), cx(x2), cy(y2)];
  }
}
