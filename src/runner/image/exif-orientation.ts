// The EXIF orientation of a JPEG, read from its markers without decoding it: the decoder that
// does not rotate (libjpeg-turbo) is only used where there is nothing to rotate.

/**
 * The orientation tag of IFD0 in the JPEG's Exif APP1 segment; 1 (as stored) when there is no Exif
 * segment or no orientation tag; undefined when the bytes are not a JPEG or what they say cannot be
 * read with certainty (callers then leave the image to the decoder that reads it fully).
 */
export function jpegOrientation(bytes: Uint8Array): number | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    // Start of scan: the metadata segments are all before it.
    if (marker === 0xda) return 1;
    if (marker === 0xd9) return undefined;
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    if (length < 2) return undefined;
    const start = at + 4;
    if (marker === 0xe1 && isExifHeader(bytes, start)) return tiffOrientation(bytes, start + 6, Math.min(at + 2 + length, bytes.length));
    // Markers without a length (RSTn, TEM) do not occur before the scan: something is off.
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) return undefined;
    at += 2 + length;
  }
  return undefined;
}

function isExifHeader(b: Uint8Array, at: number): boolean {
  // "Exif\0\0"
  return b[at] === 0x45 && b[at + 1] === 0x78 && b[at + 2] === 0x69 && b[at + 3] === 0x66 && b[at + 4] === 0 && b[at + 5] === 0;
}

/** Tag 0x0112 of IFD0 in the TIFF structure at [tiff, end): 1 when IFD0 has none. */
function tiffOrientation(b: Uint8Array, tiff: number, end: number): number | undefined {
  if (tiff + 8 > end) return undefined;
  const little = b[tiff] === 0x49 && b[tiff + 1] === 0x49; // "II"
  if (!little && !(b[tiff] === 0x4d && b[tiff + 1] === 0x4d)) return undefined; // "MM"
  const u16 = (o: number) => (little ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!);
  const u32 = (o: number) => (little ? u16(o) + u16(o + 2) * 0x10000 : u16(o) * 0x10000 + u16(o + 2));
  const ifd = tiff + u32(tiff + 4);
  if (ifd + 2 > end) return undefined;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > end) return undefined;
    // Tag 0x0112, type SHORT (3): the value sits in the first two bytes of the value field.
    if (u16(entry) === 0x0112) return u16(entry + 2) === 3 ? u16(entry + 8) : undefined;
  }
  return 1;
}
