// Label text for visualizations without a text rasterisation per image: each character is drawn
// once per pixel size (sharp's SVG renderer, the system's monospace font through fontconfig) into
// an alpha mask, kept, and copied into pictures from then on. Rendering a label costs ~2 ms of
// font setup in librsvg however small it is, and a picture has several labels; copying its glyphs
// costs microseconds. Monospace because one advance fits every glyph of the font; a glyph wider
// than that (a CJK fallback) takes as many advances as its ink needs, as a terminal does.
import { loadSharp } from '../image/sharp-loader.ts';

export interface Glyph {
  /** Coverage 0-255, `width` x `height`, row-major; the baseline is at row `baseline`. */
  alpha: Uint8Array;
  width: number;
  height: number;
  /** How far the next glyph starts, in pixels (a whole number of the font's advance). */
  advance: number;
}

export interface FontMetrics {
  /** Line height and baseline row of every glyph of this size. */
  height: number;
  baseline: number;
  /** The monospace advance, in pixels. */
  advance: number;
}

/** DejaVu Sans Mono, the font of the image (fonts-dejavu-core): advance 1233/2048 em, ascent 0.928 em, descent 0.236 em. */
export function fontMetrics(px: number): FontMetrics {
  return { height: Math.ceil(px * 1.17), baseline: Math.round(px * 0.93), advance: Math.round((px * 1233) / 2048) };
}

const escapeXml = (c: string) => (/[<>&'"]/.test(c) ? `&#${c.codePointAt(0)};` : c);

/** Characters drawn as themselves; anything else (controls, unpaired surrogates) as `?`. */
const printable = (c: string) => (/^[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]$/u.test(c) ? c : '?');

/** Renders `chars` of size `px`, each in its own slot two advances wide, and cuts them apart. */
async function renderGlyphs(chars: string[], px: number): Promise<Glyph[]> {
  const m = fontMetrics(px);
  // Two advances leave room for a wide fallback glyph; the slots are far enough apart for none to spill.
  const slot = 2 * m.advance + px;
  const texts = chars.map((c, i) => `<text x="${i * slot}" y="${m.baseline}" xml:space="preserve">${escapeXml(c)}</text>`).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${slot * chars.length}" height="${m.height}"><g font-family="monospace" font-size="${px}" fill="white">${texts}</g></svg>`;
  const sharp = await loadSharp();
  const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return chars.map((_, i) => {
    let right = 0;
    const alpha = new Uint8Array(slot * m.height);
    for (let y = 0; y < m.height; y++) {
      for (let x = 0; x < slot; x++) {
        const a = data[(y * info.width + i * slot + x) * info.channels + 3]!;
        alpha[y * slot + x] = a;
        if (a > 0 && x + 1 > right) right = x + 1;
      }
    }
    const advance = Math.max(1, Math.ceil(right / m.advance - 0.25)) * m.advance;
    return { alpha, width: slot, height: m.height, advance };
  });
}

/** Glyphs by pixel size and character, rendered on first use; a few sizes kept (a dataset's image sizes pick the size). */
export class GlyphCache {
  readonly #sizes = new Map<number, Map<string, Promise<Glyph>>>();
  readonly #maxSizes: number;

  constructor(maxSizes = 16) {
    this.#maxSizes = maxSizes;
  }

  /** The glyphs of `text` at `px` pixels, one per character. */
  async glyphs(text: string, px: number): Promise<Glyph[]> {
    let size = this.#sizes.get(px);
    if (size) {
      this.#sizes.delete(px); // most recently used last
    } else {
      size = new Map();
      if (this.#sizes.size >= this.#maxSizes) this.#sizes.delete(this.#sizes.keys().next().value!);
    }
    this.#sizes.set(px, size);
    const chars = Array.from(text, printable);
    const missing = [...new Set(chars.filter((c) => !size.has(c)))];
    if (missing.length > 0) {
      const rendered = renderGlyphs(missing, px);
      missing.forEach((c, i) =>
        size.set(
          c,
          rendered.then((g) => g[i]!),
        ),
      );
      // A failed rendering is not kept: the next label tries again.
      rendered.catch(() => missing.forEach((c) => size.delete(c)));
    }
    return Promise.all(chars.map((c) => size.get(c)!));
  }
}
