// Every image the runner reads becomes RGB pixels here, as the reference libraries see them
// (Pillow's `convert('RGB')`, OpenCV's `imread`): EXIF orientation applied, alpha dropped, and an
// embedded ICC profile ignored (neither library applies one; libvips would convert to sRGB).
import { jpegOrientation } from './exif-orientation.ts';
import { loadSharp, type SharpPipeline } from './sharp-loader.ts';
import { TJCS_GRAY, TJCS_YCbCr, turboJpeg, type JpegHeader, type TurboJpeg } from './turbo-jpeg.ts';

/** Decoded pixels, HWC RGB. */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
}

/** Which decoder a JPEG goes to: libjpeg-turbo where it applies (the default), or libvips always. */
export type JpegDecoder = 'auto' | 'sharp';

let decoder: JpegDecoder = 'auto';

/**
 * Set once at start-up from the runner's environment (JPEG_DECODER). Returns what decodes the
 * JPEGs it can take: libjpeg-turbo's path, or 'sharp' when asked or when it does not load here.
 */
export function useJpegDecoder(d: JpegDecoder): string {
  decoder = d;
  return (d === 'auto' && turboJpeg()?.path) || 'sharp';
}

/**
 * The header of a JPEG that libjpeg-turbo decodes exactly as the full decoder would: stored
 * upright, YCbCr or grey; undefined for anything else (other formats, rotations, CMYK, a header
 * libjpeg-turbo cannot read), which goes to sharp.
 */
export function directJpeg(bytes: Uint8Array): JpegHeader | undefined {
  if (decoder !== 'auto' || jpegOrientation(bytes) !== 1) return undefined;
  const header = turboJpeg()?.header(bytes);
  if (!header || (header.colorspace !== TJCS_YCbCr && header.colorspace !== TJCS_GRAY)) return undefined;
  // A header can claim any size (up to 65,535 a side: 12 GB of pixels): above sharp's own limit
  // sharp refuses it, without allocating anything.
  return header.width * header.height <= SHARP_PIXEL_LIMIT ? header : undefined;
}

/** sharp's default `limitInputPixels`: 0x3FFF * 0x3FFF. */
const SHARP_PIXEL_LIMIT = 0x3fff * 0x3fff;

/**
 * The largest image decoded (or picture encoded) on the calling thread, about 7 ms of CPU here: a
 * larger one would hold the event loop (heartbeats, the predictor's other requests) and goes to a
 * libuv thread. The transient buffer is kept up to this size too.
 */
export const ON_THREAD_MAX_PIXELS = 1024 * 1024;

/** The image's RGB pixels. Throws what the decoder says for a file it cannot read. */
export async function decodeRgb(bytes: Uint8Array): Promise<RgbImage> {
  const header = directJpeg(bytes);
  if (header) {
    const turbo = turboJpeg()!;
    const decoded = header.width * header.height <= ON_THREAD_MAX_PIXELS ? turbo.decodeRgb(bytes, header) : await turbo.decodeRgbOffThread(bytes, header);
    if (decoded.ok) return { data: decoded.data, width: header.width, height: header.height };
    // Corrupt data: libvips decides whether it is an error (failOn) and words it.
  }
  return decodeWithSharp(bytes);
}

let scratch = Buffer.alloc(0);

/**
 * A direct JPEG's pixels in a buffer that the next call reuses, for a caller that is done with
 * them before it awaits anything (a resize that copies what it keeps): no garbage a decoded image,
 * which kept about 60 MiB more resident between collections. Undefined for anything else, a large
 * image or corrupt data: decodeRgb then.
 */
export function transientRgb(bytes: Uint8Array): RgbImage | undefined {
  const header = directJpeg(bytes);
  if (!header) return undefined;
  // A large image: decodeRgb, off the event loop.
  if (header.width * header.height > ON_THREAD_MAX_PIXELS) return undefined;
  const size = header.width * header.height * 3;
  if (scratch.length < size) scratch = Buffer.allocUnsafe(size);
  const decoded = turboJpeg()!.decodeRgb(bytes, header, { data: scratch, pitch: header.width * 3 });
  return decoded.ok ? { data: scratch.subarray(0, size), width: header.width, height: header.height } : undefined;
}

/** libjpeg-turbo for encoding pictures, unless JPEG_DECODER says sharp for everything. */
export function jpegEncoder(): TurboJpeg | undefined {
  return decoder === 'auto' ? (turboJpeg() ?? undefined) : undefined;
}

/** sharp's pipeline for what libjpeg-turbo does not take; `failOn: 'error'` refuses truncated files. */
export async function sharpRgb(bytes: Uint8Array): Promise<SharpPipeline> {
  const sharp = await loadSharp();
  return sharp(bytes, { failOn: 'error', autoOrient: true, ignoreIcc: true }).removeAlpha().toColourspace('srgb');
}

async function decodeWithSharp(bytes: Uint8Array): Promise<RgbImage> {
  const { data, info } = await (await sharpRgb(bytes)).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
  return { data, width: info.width, height: info.height };
}
