// COCO's compressed RLE strings (pycocotools' rleFrString), read by the runner (datasets,
// visualizations) and by the dashboard in the browser: no dependency, so both can bundle it.

/** Run lengths of a binary mask, column-major, background first (COCO's uncompressed RLE). */
export interface Rle {
  /** [height, width], as COCO's `size`. */
  size: [number, number];
  counts: number[];
}

/** rleFrString: compressed counts back to numbers. */
export function rleFromString(counts: string, height: number, width: number): Rle {
  const out: number[] = [];
  let p = 0;
  while (p < counts.length) {
    let x = 0;
    let k = 0;
    for (let more = true; more;) {
      const c = counts.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k);
    }
    if (out.length > 2) x += out[out.length - 2]!;
    out.push(x);
  }
  return { size: [height, width], counts: out };
}
