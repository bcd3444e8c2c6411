/**
 * The little of the zip format a Java archive inventory needs: the central directory (found from
 * the end-of-central-directory record, zip64 included) and single entries, stored or deflated.
 * Archives are read in pieces (a file's end, its directory, a few entries), never whole, and every
 * length is checked, so a damaged or hostile archive yields a reason instead of a crash or a huge
 * allocation.
 */
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';

const inflate = promisify(inflateRaw);

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

/** Where the bytes of an archive come from: a file on disk, or a nested archive held in memory. */
export interface ZipSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export function bufferSource(data: Buffer): ZipSource {
  return {
    size: data.length,
    read: async (offset, length) => data.subarray(offset, Math.min(data.length, offset + length)),
  };
}

export function fileSource(handle: FileHandle, size: number): ZipSource {
  return {
    size,
    read: async (offset, length) => {
      const out = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      let got = 0;
      while (got < out.length) {
        const { bytesRead } = await handle.read(out, got, out.length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return out.subarray(0, got);
    },
  };
}

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly encrypted: boolean;
  readonly compressedSize: number;
  readonly size: number;
  /** Offset of the local header in the source (corrected for data prepended to the archive). */
  readonly localOffset: number;
}

export class ZipError {
  constructor(readonly reason: string) {}
}

function findEocd(tail: Buffer): number {
  for (let at = tail.length - EOCD_SIZE; at >= 0; at--) {
    if (tail.readUInt32LE(at) === EOCD && at + EOCD_SIZE + tail.readUInt16LE(at + 20) <= tail.length) return at;
  }
  return -1;
}

/**
 * The central directory's entries. `maxDirectoryBytes` bounds the directory read into memory;
 * `maxEntries` its number of entries.
 */
export async function readCentralDirectory(source: ZipSource, maxDirectoryBytes: number, maxEntries = 500_000): Promise<ZipEntry[] | ZipError> {
  if (source.size < EOCD_SIZE) return new ZipError('too small to be a zip archive');
  const tailLength = Math.min(source.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = source.size - tailLength;
  const tail = await source.read(tailStart, tailLength);
  const eocd = findEocd(tail);
  if (eocd === -1) return new ZipError('no end of central directory record (not a zip archive, or truncated)');
  const eocdOffset = tailStart + eocd;
  let count = tail.readUInt16LE(eocd + 10);
  let dirSize = tail.readUInt32LE(eocd + 12);
  let dirOffset = tail.readUInt32LE(eocd + 16);
  let dirEnd = eocdOffset;
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    const locatorAt = eocdOffset - 20;
    const locator = locatorAt >= 0 ? await source.read(locatorAt, 20) : Buffer.alloc(0);
    if (locator.length === 20 && locator.readUInt32LE(0) === ZIP64_LOCATOR) {
      const recordAt = Number(locator.readBigUInt64LE(8));
      const record = await source.read(recordAt, 56);
      if (record.length < 56 || record.readUInt32LE(0) !== ZIP64_EOCD) return new ZipError('damaged zip64 end of central directory record');
      count = Number(record.readBigUInt64LE(32));
      dirSize = Number(record.readBigUInt64LE(40));
      dirOffset = Number(record.readBigUInt64LE(48));
      dirEnd = recordAt;
    }
  }
  if (count > maxEntries) return new ZipError(`${count} entries, more than the ${maxEntries} read`);
  if (dirSize > maxDirectoryBytes) return new ZipError(`central directory of ${dirSize} bytes, over the limit of ${maxDirectoryBytes}`);
  // Bytes prepended to the archive (a launch script before an executable jar) shift every offset.
  const shift = dirEnd - dirSize - dirOffset;
  if (dirEnd - dirSize < 0 || shift < 0) return new ZipError('the central directory lies outside the file');
  const dir = await source.read(dirEnd - dirSize, dirSize);
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > dir.length || dir.readUInt32LE(at) !== CENTRAL) return new ZipError(`central directory entry ${i} is damaged`);
    const flags = dir.readUInt16LE(at + 8);
    const method = dir.readUInt16LE(at + 10);
    let compressedSize = dir.readUInt32LE(at + 20);
    let size = dir.readUInt32LE(at + 24);
    const nameLength = dir.readUInt16LE(at + 28);
    const extraLength = dir.readUInt16LE(at + 30);
    const commentLength = dir.readUInt16LE(at + 32);
    let localOffset = dir.readUInt32LE(at + 42);
    const next = at + 46 + nameLength + extraLength + commentLength;
    if (next > dir.length) return new ZipError(`central directory entry ${i} runs past the directory`);
    const name = dir.toString('utf8', at + 46, at + 46 + nameLength);
    // The zip64 extra field holds, in this order, the sizes and offset whose 32-bit fields are saturated.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = dir.readUInt16LE(extra);
      const length = dir.readUInt16LE(extra + 2);
      if (id === 0x0001) {
        let field = extra + 4;
        const take = (): number | undefined => {
          if (field + 8 > extra + 4 + length || field + 8 > extraEnd) return undefined;
          const value = Number(dir.readBigUInt64LE(field));
          field += 8;
          return value;
        };
        if (size === 0xffffffff) size = take() ?? size;
        if (compressedSize === 0xffffffff) compressedSize = take() ?? compressedSize;
        if (localOffset === 0xffffffff) localOffset = take() ?? localOffset;
      }
      extra += 4 + length;
    }
    entries.push({ name, method, encrypted: (flags & 1) === 1, compressedSize, size, localOffset: localOffset + shift });
    at = next;
  }
  return entries;
}

/** One entry's bytes, refused when larger than `maxBytes` once inflated. */
export async function readEntry(source: ZipSource, entry: ZipEntry, maxBytes: number): Promise<Buffer | ZipError> {
  if (entry.encrypted) return new ZipError(`${entry.name}: encrypted`);
  if (entry.size > maxBytes) return new ZipError(`${entry.name}: ${entry.size} bytes, over the limit of ${maxBytes}`);
  if (entry.method !== 0 && entry.method !== 8) return new ZipError(`${entry.name}: compression method ${entry.method} is not read`);
  const header = await source.read(entry.localOffset, 30);
  if (header.length < 30 || header.readUInt32LE(0) !== LOCAL) return new ZipError(`${entry.name}: damaged local header`);
  const dataAt = entry.localOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (entry.compressedSize > maxBytes * 2 + 1024 || dataAt + entry.compressedSize > source.size) return new ZipError(`${entry.name}: data outside the archive`);
  const data = await source.read(dataAt, entry.compressedSize);
  if (entry.method === 0) return data;
  try {
    return await inflate(data, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (error) {
    return new ZipError(`${entry.name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
