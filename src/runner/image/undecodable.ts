// Why an image could not be decoded, in words that depend on the image alone.
//
// sharp words a failure as its own prefix ("Input buffer has corrupt header") and then libvips'
// error buffer, which is one for the whole process: with several decodes at once (the runner's
// DECODE_CONCURRENCY) it held other images' errors, or nothing when another decode had just cleared
// it. One corrupt JPEG read "...corrupt header: VipsJpeg: premature end of JPEG image" in one run and
// "...corrupt header:" in the next, and an image could be given another image's reason. The reason
// kept is sharp's prefix, with what the bytes themselves show: their format, size, and whether
// they end where a whole file of that format ends.

/**
 * The reason a decode failed: sharp's own words without libvips' shared buffer, and what the bytes
 * show; a reason of the runner's own (not libvips') as it is, its first line.
 */
export function undecodableReason(err: unknown, bytes: Uint8Array): string {
  const message = err instanceof Error ? err.message : String(err);
  // sharp's prefixes are sentences of their own ("Input buffer contains unsupported image format").
  const prefix = /^(Input (buffer|file|image) [^:\n]*)/.exec(message)?.[1];
  if (prefix) return `${prefix} (${describeBytes(bytes)})`;
  // libvips' buffer alone ("VipsJpeg: premature end of JPEG image", from a failure past the header).
  if (/\bvips/i.test(message)) return `libvips could not decode it (${describeBytes(bytes)})`;
  return message.split('\n')[0]!;
}

/** Format (by its signature), size, and, for JPEG and PNG, whether the file ends as a whole one does. */
export function describeBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'an empty file';
  const size = `${bytes.length.toLocaleString('en-US')} bytes`;
  const format = formatOf(bytes);
  if (!format) return `${size}, no image format's signature: starts ${hex(bytes.subarray(0, 8))}`;
  const cut = endsWhole(format, bytes) === false ? `, cut short: no ${format === 'JPEG' ? 'end-of-image marker' : 'IEND chunk'} at its end` : '';
  return `${format} data, ${size}${cut}`;
}

function formatOf(b: Uint8Array): string | undefined {
  const starts = (...sig: number[]) => sig.every((v, i) => b[i] === v);
  if (starts(0xff, 0xd8, 0xff)) return 'JPEG';
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'PNG';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'GIF';
  if (starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'WebP';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'TIFF';
  if (starts(0x42, 0x4d)) return 'BMP';
  if (b[0] === 0x50 && b[1]! >= 0x31 && b[1]! <= 0x36) return 'PNM';
  return undefined;
}

/** Whether a JPEG ends with EOI, a PNG with its IEND chunk; undefined for other formats. */
function endsWhole(format: string, b: Uint8Array): boolean | undefined {
  const n = b.length;
  if (format === 'JPEG') return n >= 2 && b[n - 2] === 0xff && b[n - 1] === 0xd9;
  // IEND: its length (0), type, and CRC (ae 42 60 82).
  if (format === 'PNG') return n >= 12 && [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82].every((v, i) => b[n - 8 + i] === v);
  return undefined;
}

const hex = (b: Uint8Array) => [...b].map((v) => v.toString(16).padStart(2, '0')).join(' ');
