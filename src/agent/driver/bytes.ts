/**
 * Byte-level helpers shared by the record decoders: text (UTF-8, with bytes that are not UTF-8
 * kept as the code points U+DC80..U+DCFF), NUL-separated argument areas, NUL-padded fixed
 * fields, u64 and copies.
 */
import { isUtf8 } from 'node:buffer';

/** A Buffer view of the same bytes (no copy): Buffer's slicing decoders are the fast ones. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes bytes as UTF-8; each byte that is not part of valid UTF-8 becomes the code point
 * U+DC00 + the byte (U+DC80..U+DCFF, lone low surrogates, which JSON writes as `\udcff`), so
 * that nothing the process passed is lost or silently replaced. Valid UTF-8 never decodes to a
 * surrogate, so such a character always means a raw byte: an escape made of printable text
 * (`\xff`) would read the same as a process that passed those four characters itself.
 */
export function decodeText(bytes: Uint8Array): string {
  return decodeRange(asBuffer(bytes), 0, bytes.length);
}

export function decodeRange(buf: Buffer, start: number, end: number): string {
  if (end <= start) return '';
  // Fast path: pure ASCII, by far the most common case.
  let ascii = true;
  for (let i = start; i < end; i++) {
    if ((buf[i] ?? 0) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1', start, end);
  const slice = buf.subarray(start, end);
  return isUtf8(slice) ? buf.toString('utf8', start, end) : escapeInvalidUtf8(slice);
}

const isTrail = (byte: number | undefined, low = 0x80, high = 0xbf): boolean => byte !== undefined && byte >= low && byte <= high;

/**
 * The length of the well-formed UTF-8 sequence at `i` (the Unicode standard's table 3-7: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0 when the byte there starts none.
 */
function sequenceAt(bytes: Uint8Array, i: number): number {
  const b = bytes[i] ?? 0;
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return isTrail(bytes[i + 1]) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    const second = isTrail(bytes[i + 1], b === 0xe0 ? 0xa0 : 0x80, b === 0xed ? 0x9f : 0xbf);
    return second && isTrail(bytes[i + 2]) ? 3 : 0;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    const second = isTrail(bytes[i + 1], b === 0xf0 ? 0x90 : 0x80, b === 0xf4 ? 0x8f : 0xbf);
    return second && isTrail(bytes[i + 2]) && isTrail(bytes[i + 3]) ? 4 : 0;
  }
  return 0;
}

/**
 * Decodes in one pass into UTF-16 code units (never more units than bytes). Files are decoded
 * this way too (inventory tables): 16 MiB with a stray byte every KiB takes about 0.1 s, where
 * decoding each character on its own took 2.4 s.
 */
function escapeInvalidUtf8(bytes: Uint8Array): string {
  const units = new Uint16Array(bytes.length);
  let n = 0;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    if (b < 0x80) {
      units[n++] = b;
      i++;
      continue;
    }
    const len = sequenceAt(bytes, i);
    if (len === 0) units[n++] = 0xdc00 + b;
    else {
      let code = b & (len === 2 ? 0x1f : len === 3 ? 0x0f : 0x07);
      for (let k = 1; k < len; k++) code = (code << 6) | ((bytes[i + k] ?? 0) & 0x3f);
      if (code < 0x10000) units[n++] = code;
      else {
        units[n++] = 0xd800 + ((code - 0x10000) >> 10);
        units[n++] = 0xdc00 + ((code - 0x10000) & 0x3ff);
      }
    }
    i += len === 0 ? 1 : len;
  }
  // In pieces, as a call takes only so many arguments; not as a utf16le Buffer, whose byte order need not be the platform's.
  const parts: string[] = [];
  for (let at = 0; at < n; at += 8192) parts.push(String.fromCharCode.apply(null, units.subarray(at, Math.min(n, at + 8192)) as unknown as number[]));
  return parts.join('');
}

/** Whether text holds a raw byte of decodeText (U+DC80..U+DCFF). */
export const hasRawBytes = (text: string): boolean => /[\udc80-\udcff]/.test(text);

/**
 * The bytes decodeText read `text` from: UTF-8, with each U+DC80..U+DCFF written back as the byte
 * it stands for, so that a name read from the file system opens the same file again.
 */
export function encodeText(text: string): Buffer {
  if (!hasRawBytes(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // A low surrogate after a high one is half of a pair (a character of its own), not a byte.
    if (code < 0xdc80 || code > 0xdcff || (i > 0 && (text.charCodeAt(i - 1) & 0xfc00) === 0xd800)) continue;
    parts.push(Buffer.from(text.slice(start, i), 'utf8'), Buffer.of(code - 0xdc00));
    start = i + 1;
  }
  parts.push(Buffer.from(text.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** A path as the file system takes it: text, or bytes when a name in it is not UTF-8. */
export type DiskPath = string | Buffer;

/** The path to open for a (decoded) path: the same string unless it holds raw bytes. */
export const diskPath = (file: string): DiskPath => (hasRawBytes(file) ? encodeText(file) : file);

/** Splits the raw NUL-separated argument area into arguments. */
export function splitArgv(bytes: Uint8Array): string[] {
  return splitRange(asBuffer(bytes), 0, bytes.length);
}

export function splitRange(buf: Buffer, from: number, to: number): string[] {
  const args: string[] = [];
  let start = from;
  for (let i = from; i < to; i++) {
    if (buf[i] === 0) {
      args.push(decodeRange(buf, start, i));
      start = i + 1;
    }
  }
  // A truncated area ends without a NUL: keep the partial last argument.
  if (start < to) args.push(decodeRange(buf, start, to));
  return args;
}

export function cString(buf: Buffer, start: number, end: number): string {
  let stop = start;
  while (stop < end && buf[stop] !== 0) stop++;
  return decodeRange(buf, start, stop);
}

/** A (seconds s64, nanoseconds u32) pair as nanoseconds. */
export const timeNs = (view: DataView, secAt: number, nsecAt: number): number =>
  (view.getUint32(secAt, true) + view.getInt32(secAt + 4, true) * 0x1_0000_0000) * 1e9 + view.getUint32(nsecAt, true);

/** A copy (Buffer#slice would be a view that keeps the whole read chunk alive). */
export function copyOf(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, start, end);
}

/** A u64 as a number: exact below 2^53, which covers times in ns for 104 days of uptime and every inode seen. */
export const u64 = (view: DataView, offset: number): number => view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x1_0000_0000;
