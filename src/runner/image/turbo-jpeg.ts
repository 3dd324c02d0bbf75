// libjpeg-turbo's TurboJPEG API, called through koffi. It decodes a JPEG into RGB pixels for about a
// third of sharp's CPU (0.34 vs 1.1 ms a 224x224 JPEG, 1.7 vs 3.3 ms at 640x480 on the bench
// machine): libvips spends most of a small image on its pipeline, threads and buffers. The
// pixels are the same as Pillow's and OpenCV's, which decode with libjpeg-turbo's defaults too
// (accurate integer IDCT, smooth chroma upsampling; flags 0 below).
//
// The library is the one the @julusian/jpeg-turbo package ships for Linux (libjpeg-turbo 3.x; its
// own binding is not used: it forces the fast, inexact IDCT), else the system's libturbojpeg.
// Version 2's functions are used, which 3.x keeps, so that either works.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { LibraryHandle } from 'koffi';

/** TurboJPEG's colourspaces (TJCS_*) that decode to RGB without a colour transform of ours. */
export const TJCS_YCbCr = 1;
export const TJCS_GRAY = 2;
const TJPF_RGB = 0;

export interface JpegHeader {
  width: number;
  height: number;
  /** TJCS_* */
  colorspace: number;
}

/**
 * The outcome of a decode: the pixels, or a refusal (an error, or a warning about corrupt data it
 * decoded past); the caller then leaves the file to sharp, which decides and words it.
 */
export type TurboDecode = { ok: true; data: Buffer } | { ok: false };

const TJSAMP_420 = 2;
const TJFLAG_NOREALLOC = 1024;
const ENCODE_BUFFER_KEPT_BYTES = 16 * 2 ** 20;

export interface TurboJpeg {
  /** Where the library was loaded from. */
  readonly path: string;
  /** The header of a JPEG, or undefined when libjpeg-turbo cannot read one. */
  header(bytes: Uint8Array): JpegHeader | undefined;
  /**
   * Decodes into RGB (HWC) on the calling thread: into a new buffer, or into `into` (rows `pitch`
   * bytes apart, from its first byte).
   */
  decodeRgb(bytes: Uint8Array, header: JpegHeader, into?: { data: Buffer; pitch: number }): TurboDecode;
  /** Decodes into a new RGB buffer on a libuv pool thread: for large images, which would hold the event loop. */
  decodeRgbOffThread(bytes: Uint8Array, header: JpegHeader): Promise<TurboDecode>;
  /**
   * Encodes RGB (HWC) pixels, rows `pitch` bytes apart (default width x 3), as a baseline 4:2:0
   * JPEG on the calling thread; undefined when libjpeg-turbo refuses.
   */
  encodeRgb(data: Uint8Array, width: number, height: number, quality: number, pitch?: number): Buffer | undefined;
}

/** Candidate library paths, most specific first. */
function candidates(): string[] {
  const found: string[] = [];
  try {
    const pkg = dirname(createRequire(import.meta.url).resolve('@julusian/jpeg-turbo/package.json'));
    const dir = `jpeg-turbo-${process.platform}-${process.arch}`;
    found.push(join(pkg, 'prebuilds', dir, 'libturbojpeg.so.0'), join(pkg, 'prebuilds', `${dir}-musl`, 'libturbojpeg.so.0'));
  } catch {
    // not installed: the system's library, if any
  }
  found.push(process.platform === 'darwin' ? 'libturbojpeg.0.dylib' : process.platform === 'win32' ? 'turbojpeg.dll' : 'libturbojpeg.so.0');
  return found;
}

let loaded: TurboJpeg | null | undefined;

/** The TurboJPEG library, loaded once; null when none loads on this machine. */
export function turboJpeg(): TurboJpeg | null {
  if (loaded === undefined) loaded = load();
  return loaded;
}

function load(): TurboJpeg | null {
  const require = createRequire(import.meta.url);
  let koffi: typeof import('koffi');
  try {
    // koffi's binaries are optional dependencies, which npm may have skipped: then sharp decodes.
    koffi = require('koffi') as typeof import('koffi');
  } catch {
    return null;
  }
  for (const path of candidates()) {
    try {
      // A library that is not there, or too old to have these functions (before 2.0): the next.
      return bind(koffi.load(path), path);
    } catch {
      continue;
    }
  }
  return null;
}

function bind(lib: LibraryHandle, path: string): TurboJpeg {
  const init = lib.func('void *tjInitDecompress()');
  const readHeader = lib.func(
    'int tjDecompressHeader3(void *handle, const uint8_t *jpeg, unsigned long size, int32_t *width, int32_t *height, int32_t *subsamp, int32_t *colorspace)',
  );
  const decompress = lib.func(
    'int tjDecompress2(void *handle, const uint8_t *jpeg, unsigned long size, uint8_t *dst, int width, int pitch, int height, int pixelFormat, int flags)',
  );
  const initCompress = lib.func('void *tjInitCompress()');
  const bufferSize = lib.func('unsigned long tjBufSize(int width, int height, int subsamp)');
  const compress = lib.func(
    'int tjCompress2(void *handle, const uint8_t *src, int width, int pitch, int height, int pixelFormat, _Inout_ uint8_t **jpeg, _Inout_ unsigned long *size, int subsamp, int quality, int flags)',
  );
  // One handle for the calls on the calling thread (the runner's main thread; a handle keeps its
  // buffers between images), as long as the process lives; calls off the thread take their own.
  const handle: unknown = init();
  if (!handle) throw new Error(`tjInitDecompress failed in ${path}`);
  const spareHandles: unknown[] = [];
  let encoder: unknown;
  // The encoder writes into this buffer (never reallocating it: NOREALLOC), grown to the largest
  // JPEG an image of the size can give; the JPEG is copied out of it.
  let encoded = Buffer.alloc(0);
  const out = new Int32Array(4);
  const fields = [out.subarray(0, 1), out.subarray(1, 2), out.subarray(2, 3), out.subarray(3, 4)] as const;
  return {
    path,
    header(bytes) {
      if (readHeader(handle, bytes, bytes.length, ...fields) !== 0) return undefined;
      return { width: out[0]!, height: out[1]!, colorspace: out[3]! };
    },
    decodeRgb(bytes, h, into) {
      const data = into?.data ?? Buffer.allocUnsafe(h.width * h.height * 3);
      if (into && into.data.length < (h.height - 1) * into.pitch + h.width * 3) throw new RangeError('decode target too small');
      if (decompress(handle, bytes, bytes.length, data, h.width, into?.pitch ?? 0, h.height, TJPF_RGB, 0) === 0) return { ok: true, data };
      return { ok: false };
    },
    async decodeRgbOffThread(bytes, h) {
      // A handle serves one call at a time: each call in flight has its own, kept for the next.
      const own = spareHandles.pop() ?? init();
      if (!own) throw new Error(`tjInitDecompress failed in ${path}`);
      const data = Buffer.allocUnsafe(h.width * h.height * 3);
      try {
        const rc = await new Promise<number>((resolve, reject) =>
          decompress.async(own, bytes, bytes.length, data, h.width, 0, h.height, TJPF_RGB, 0, (err: unknown, result: number) =>
            err ? reject(err as Error) : resolve(result),
          ),
        );
        if (rc === 0) return { ok: true, data };
        return { ok: false };
      } finally {
        spareHandles.push(own);
      }
    },
    encodeRgb(data, width, height, quality, pitch = width * 3) {
      if (pitch < width * 3 || data.length < (height - 1) * pitch + width * 3) throw new RangeError('encode source too small');
      encoder ??= initCompress();
      if (!encoder) return undefined;
      const capacity = Number(bufferSize(width, height, TJSAMP_420));
      // Kept for pictures of up to about 2,048 x 2,048; a larger one gets a buffer of its own.
      const kept = capacity <= ENCODE_BUFFER_KEPT_BYTES;
      if (kept && encoded.length < capacity) encoded = Buffer.allocUnsafe(capacity);
      const target = kept ? encoded : Buffer.allocUnsafe(capacity);
      const size = [target.length];
      if (compress(encoder, data, width, pitch, height, TJPF_RGB, [target], size, TJSAMP_420, quality, TJFLAG_NOREALLOC) !== 0) return undefined;
      return kept ? Buffer.from(target.subarray(0, size[0])) : target.subarray(0, size[0]);
    },
  };
}
