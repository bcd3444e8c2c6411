/**
 * The rpm header format, as stored in the rpm database (one blob per installed package): a count
 * of index entries and the size of the data store (big-endian int32 each), the index entries
 * (16 bytes each: tag, type, offset into the store, count), then the store. Package files prefix
 * the same structure with an 8-byte magic, accepted too. Every offset is checked against the
 * store, so a damaged blob is refused with a reason instead of read out of bounds.
 */

export const RpmTag = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  SUMMARY: 1004,
  INSTALLTIME: 1008,
  SIZE: 1009,
  VENDOR: 1011,
  ARCH: 1022,
  LONGSIZE: 5009,
} as const;

export const RpmType = {
  NULL: 0,
  CHAR: 1,
  INT8: 2,
  INT16: 3,
  INT32: 4,
  INT64: 5,
  STRING: 6,
  BIN: 7,
  STRING_ARRAY: 8,
  I18NSTRING: 9,
} as const;

/** Header magic of package files: 8e ad e8, version 01, four reserved bytes. */
const MAGIC = 0x8eade801;
/** rpm's own limits (HEADER_TAGS_MAX, HEADER_DATA_MAX): beyond them a blob is damaged. */
const MAX_ENTRIES = 0xffff;
const MAX_DATA = 256 * 1024 * 1024;

interface Entry {
  readonly type: number;
  readonly offset: number;
  readonly count: number;
}

export class RpmHeader {
  private constructor(
    private readonly entries: ReadonlyMap<number, Entry>,
    private readonly store: Buffer,
  ) {}

  /** Parses a header blob; a string says why it is not one. */
  static parse(blob: Uint8Array): RpmHeader | string {
    let buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    if (buf.length >= 8 && buf.readUInt32BE(0) === MAGIC) buf = buf.subarray(8);
    if (buf.length < 8) return `${buf.length} bytes: too short for a header`;
    const count = buf.readUInt32BE(0);
    const size = buf.readUInt32BE(4);
    if (count === 0 || count > MAX_ENTRIES) return `${count} index entries`;
    if (size > MAX_DATA) return `data store of ${size} bytes`;
    const storeStart = 8 + count * 16;
    if (storeStart + size > buf.length) return `index and store need ${storeStart + size} bytes, the blob has ${buf.length}`;
    const store = buf.subarray(storeStart, storeStart + size);
    const entries = new Map<number, Entry>();
    for (let i = 0; i < count; i++) {
      const at = 8 + i * 16;
      const tag = buf.readUInt32BE(at);
      const type = buf.readUInt32BE(at + 4);
      const offset = buf.readInt32BE(at + 8);
      const n = buf.readUInt32BE(at + 12);
      if (type > RpmType.I18NSTRING) return `entry ${i} (tag ${tag}): unknown type ${type}`;
      if (offset < 0 || offset > size) return `entry ${i} (tag ${tag}): offset ${offset} outside the ${size}-byte store`;
      if (!entries.has(tag)) entries.set(tag, { type, offset, count: n });
    }
    return new RpmHeader(entries, store);
  }

  /** A string tag (STRING, or the first of a STRING_ARRAY or I18NSTRING); undefined when absent or damaged. */
  string(tag: number): string | undefined {
    const entry = this.entries.get(tag);
    if (!entry || (entry.type !== RpmType.STRING && entry.type !== RpmType.STRING_ARRAY && entry.type !== RpmType.I18NSTRING)) return undefined;
    if (entry.count === 0) return undefined;
    const end = this.store.indexOf(0, entry.offset);
    if (end === -1) return undefined;
    return this.store.toString('utf8', entry.offset, end);
  }

  /** The first value of an integer tag (INT8 to INT64); undefined when absent or damaged. */
  integer(tag: number): number | undefined {
    const entry = this.entries.get(tag);
    if (!entry || entry.count === 0) return undefined;
    const width = { [RpmType.INT8]: 1, [RpmType.INT16]: 2, [RpmType.INT32]: 4, [RpmType.INT64]: 8 }[entry.type];
    if (width === undefined || entry.offset + width > this.store.length) return undefined;
    switch (width) {
      case 1:
        return this.store.readUInt8(entry.offset);
      case 2:
        return this.store.readUInt16BE(entry.offset);
      case 4:
        return this.store.readUInt32BE(entry.offset);
      default:
        return Number(this.store.readBigUInt64BE(entry.offset));
    }
  }
}
