// Generated images: solid colours with mild noise (so JPEG and resizing have something to do),
// written as PNG or JPEG, optionally with an EXIF orientation tag.
import sharp from 'sharp';
import type { Rgb } from './color-classifier.ts';

/** Deterministic PRNG (mulberry32), so generated data is the same on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ImageSpec {
  rgb: Rgb;
  width: number;
  height: number;
  format: 'png' | 'jpeg';
  seed: number;
  /** Pixel noise amplitude, +-. */
  noise?: number;
  /** EXIF orientation 1-8 to record in the file. */
  orientation?: number;
}

export async function colorImage(spec: ImageSpec): Promise<Buffer> {
  const random = rng(spec.seed);
  const noise = spec.noise ?? 6;
  const pixels = Buffer.alloc(spec.width * spec.height * 3);
  for (let i = 0; i < pixels.length; i++) {
    const v = spec.rgb[i % 3]! + Math.round((random() * 2 - 1) * noise);
    pixels[i] = Math.max(0, Math.min(255, v));
  }
  let img = sharp(pixels, { raw: { width: spec.width, height: spec.height, channels: 3 } });
  if (spec.orientation) img = img.withMetadata({ orientation: spec.orientation });
  return spec.format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 92 }).toBuffer();
}

/** A photo-like 3-channel image (gradients plus noise) for benchmarks. */
export async function noiseImage(width: number, height: number, seed: number): Promise<Buffer> {
  const random = rng(seed);
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      pixels[o] = (x * 255) / width + random() * 40;
      pixels[o + 1] = (y * 255) / height + random() * 40;
      pixels[o + 2] = ((x + y) * 127) / (width + height) + random() * 40;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}
