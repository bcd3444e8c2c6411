/**
 * Decoder of the driver's binary records (driver/PROTOCOL.md, driver/src/wire.h). Pure: bytes
 * in, plain objects out. Every malformed, truncated or unknown record is counted and skipped,
 * never thrown, because one bad record must not cost the ones after it.
 */

export const RECORD_VERSION = 1;
export const RECORD_HEADER_SIZE = 32;
export const EXEC_FIXED_SIZE = 336;
export const FORK_SIZE = 88;
export const EXIT_SIZE = 64;
const FD_INFO_SIZE = 56;

export const RecordKind = {
  exec: 1,
  fork: 2,
  exit: 3,
} as const;

/** header.flags */
export const RecordFlag = {
  cnproc: 1 << 0,
  argvTruncated: 1 << 1,
  cwdTruncated: 1 << 2,
  exeTruncated: 1 << 3,
  filenameTruncated: 1 << 4,
  cgroupTruncated: 1 << 5,
  exeDeleted: 1 << 6,
  exeTmpfs: 1 << 7,
  exeMemfd: 1 << 8,
  startTicks: 1 << 9,
} as const;

/** header.missing: fields the cn_proc backend could not read because the process was gone. */
export const MissingField = {
  filename: 1 << 0,
  exe: 1 << 1,
  argv: 1 << 2,
  cwd: 1 << 3,
  creds: 1 << 4,
  parent: 1 << 5,
  pgidSid: 1 << 6,
  tty: 1 << 7,
  fds: 1 << 8,
  cgroup: 1 << 9,
  ns: 1 << 10,
  comm: 1 << 11,
  start: 1 << 12,
  loginuid: 1 << 13,
  caps: 1 << 14,
} as const;
export type MissingFieldName = keyof typeof MissingField;

export const FdKind = ['none', 'char', 'pipe', 'socket', 'file', 'dir', 'block', 'other', 'unknown'] as const;
export type FdKindName = (typeof FdKind)[number];

export interface RecordHeader {
  readonly kind: number;
  readonly size: number;
  /** CLOCK_BOOTTIME nanoseconds. */
  readonly ktimeNs: number;
  readonly pid: number;
  readonly tid: number;
  readonly flags: number;
  readonly missing: number;
}

export interface FdInfo {
  readonly kind: FdKindName;
  readonly family: number;
  readonly sockType: number;
  readonly protocol: number;
  readonly inode: number;
  readonly localPort: number;
  readonly remotePort: number;
  readonly rdev: number;
  readonly localAddr: Uint8Array;
  readonly remoteAddr: Uint8Array;
}

export interface ExecRecord extends RecordHeader {
  readonly type: 'exec';
  readonly startNs: number;
  readonly parentStartNs: number;
  readonly cgroupId: number;
  /** Effective capabilities as [low 32 bits, high 32 bits]. */
  readonly capEffective: readonly [number, number];
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  readonly uid: number;
  readonly gid: number;
  readonly euid: number;
  readonly egid: number;
  readonly suid: number;
  readonly sgid: number;
  readonly fsuid: number;
  readonly fsgid: number;
  readonly loginuid: number;
  readonly auditSession: number;
  readonly pidNs: number;
  readonly mntNs: number;
  readonly ttyDev: number;
  readonly comm: string;
  readonly fds: readonly [FdInfo, FdInfo, FdInfo];
  readonly filename: string;
  readonly exePath: string;
  readonly cwd: string;
  readonly tty: string;
  readonly cgroupPath: string;
  readonly argv: readonly string[];
  /** Size of the whole argument area in the process, before truncation. */
  readonly argvBytes: number;
}

export interface ForkRecord extends RecordHeader {
  readonly type: 'fork';
  readonly childStartNs: number;
  readonly parentStartNs: number;
  readonly cgroupId: number;
  readonly childPid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly gid: number;
  readonly comm: string;
}

export interface ExitRecord extends RecordHeader {
  readonly type: 'exit';
  readonly startNs: number;
  /** Wait status: exit status << 8, or the signal number (| 0x80 for a core dump). */
  readonly exitCode: number;
  readonly ppid: number;
  readonly comm: string;
}

export type DriverRecord = ExecRecord | ForkRecord | ExitRecord;

/** Why records were skipped; each is counted, none is silent. */
export interface DecodeCounters {
  records: number;
  truncated: number;
  badSize: number;
  badVersion: number;
  unknownKind: number;
}

export function newDecodeCounters(): DecodeCounters {
  return { records: 0, truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0 };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/**
 * Decodes bytes as UTF-8; bytes that are not valid UTF-8 become `\xHH` so that nothing the
 * process passed is lost or silently replaced.
 */
export function decodeText(bytes: Uint8Array): string {
  if (bytes.length === 0) return '';
  // Fast path: pure ASCII, by far the most common case.
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i] ?? 0) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return latin1.decode(bytes);
  try {
    return utf8.decode(bytes);
  } catch {
    return escapeInvalidUtf8(bytes);
  }
}

function escapeInvalidUtf8(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] ?? 0;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len > 0 && i + len <= bytes.length) {
      try {
        out += utf8.decode(bytes.subarray(i, i + len));
        i += len;
        continue;
      } catch {
        // not a valid sequence: escape the lead byte below
      }
    }
    out += `\\x${b.toString(16).padStart(2, '0')}`;
    i += 1;
  }
  return out;
}

/** Splits the raw NUL-separated argument area into arguments. */
export function splitArgv(bytes: Uint8Array): string[] {
  const args: string[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0) {
      args.push(decodeText(bytes.subarray(start, i)));
      start = i + 1;
    }
  }
  // A truncated area ends without a NUL: keep the partial last argument.
  if (start < bytes.length) args.push(decodeText(bytes.subarray(start)));
  return args;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decodeText(end < 0 ? bytes : bytes.subarray(0, end));
}

const u64 = (view: DataView, offset: number): number => view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x1_0000_0000;

function decodeFd(bytes: Uint8Array, view: DataView, offset: number): FdInfo {
  return {
    kind: FdKind[view.getUint8(offset)] ?? 'unknown',
    family: view.getUint8(offset + 1),
    sockType: view.getUint16(offset + 2, true),
    protocol: view.getUint16(offset + 4, true),
    inode: u64(view, offset + 8),
    localPort: view.getUint16(offset + 16, true),
    remotePort: view.getUint16(offset + 18, true),
    rdev: view.getUint32(offset + 20, true),
    localAddr: bytes.slice(offset + 24, offset + 40),
    remoteAddr: bytes.slice(offset + 40, offset + 56),
  };
}

function header(view: DataView, offset: number): RecordHeader {
  return {
    kind: view.getUint16(offset, true),
    size: view.getUint32(offset + 4, true),
    ktimeNs: u64(view, offset + 8),
    pid: view.getUint32(offset + 16, true),
    tid: view.getUint32(offset + 20, true),
    flags: view.getUint32(offset + 24, true),
    missing: view.getUint32(offset + 28, true),
  };
}

function decodeExec(bytes: Uint8Array, view: DataView, o: number, h: RecordHeader): ExecRecord | undefined {
  if (h.size < EXEC_FIXED_SIZE) return undefined;
  const lengths = [view.getUint16(o + 312, true), view.getUint16(o + 314, true), view.getUint16(o + 316, true), view.getUint16(o + 318, true), view.getUint16(o + 320, true), view.getUint32(o + 324, true)];
  const tailBytes = lengths.reduce((a, b) => a + b, 0);
  if (EXEC_FIXED_SIZE + tailBytes > h.size) return undefined;
  let cursor = o + EXEC_FIXED_SIZE;
  const take = (n: number): Uint8Array => {
    const s = bytes.subarray(cursor, cursor + n);
    cursor += n;
    return s;
  };
  const [filenameLen = 0, exeLen = 0, cwdLen = 0, ttyLen = 0, cgroupLen = 0, argvLen = 0] = lengths;
  return {
    ...h,
    type: 'exec',
    startNs: u64(view, o + 32),
    parentStartNs: u64(view, o + 40),
    cgroupId: u64(view, o + 48),
    capEffective: [view.getUint32(o + 56, true), view.getUint32(o + 60, true)],
    ppid: view.getUint32(o + 64, true),
    pgid: view.getUint32(o + 68, true),
    sid: view.getUint32(o + 72, true),
    uid: view.getUint32(o + 76, true),
    gid: view.getUint32(o + 80, true),
    euid: view.getUint32(o + 84, true),
    egid: view.getUint32(o + 88, true),
    suid: view.getUint32(o + 92, true),
    sgid: view.getUint32(o + 96, true),
    fsuid: view.getUint32(o + 100, true),
    fsgid: view.getUint32(o + 104, true),
    loginuid: view.getUint32(o + 108, true),
    auditSession: view.getUint32(o + 112, true),
    pidNs: view.getUint32(o + 116, true),
    mntNs: view.getUint32(o + 120, true),
    ttyDev: view.getUint32(o + 124, true),
    comm: cString(bytes.subarray(o + 128, o + 144)),
    fds: [decodeFd(bytes, view, o + 144), decodeFd(bytes, view, o + 144 + FD_INFO_SIZE), decodeFd(bytes, view, o + 144 + 2 * FD_INFO_SIZE)],
    filename: decodeText(take(filenameLen)),
    exePath: decodeText(take(exeLen)),
    cwd: decodeText(take(cwdLen)),
    tty: decodeText(take(ttyLen)),
    cgroupPath: decodeText(take(cgroupLen)),
    argv: splitArgv(take(argvLen)),
    argvBytes: view.getUint32(o + 328, true),
  };
}

function decodeFork(bytes: Uint8Array, view: DataView, o: number, h: RecordHeader): ForkRecord | undefined {
  if (h.size < FORK_SIZE) return undefined;
  return {
    ...h,
    type: 'fork',
    childStartNs: u64(view, o + 32),
    parentStartNs: u64(view, o + 40),
    cgroupId: u64(view, o + 48),
    childPid: view.getUint32(o + 56, true),
    ppid: view.getUint32(o + 60, true),
    uid: view.getUint32(o + 64, true),
    gid: view.getUint32(o + 68, true),
    comm: cString(bytes.subarray(o + 72, o + 88)),
  };
}

function decodeExit(bytes: Uint8Array, view: DataView, o: number, h: RecordHeader): ExitRecord | undefined {
  if (h.size < EXIT_SIZE) return undefined;
  return {
    ...h,
    type: 'exit',
    startNs: u64(view, o + 32),
    exitCode: view.getUint32(o + 40, true),
    ppid: view.getUint32(o + 44, true),
    comm: cString(bytes.subarray(o + 48, o + 64)),
  };
}

/**
 * Decodes the records of one RECORDS frame. A record whose size field is impossible ends the
 * frame (nothing after it can be located); others that cannot be decoded are skipped.
 */
export function decodeRecords(payload: Uint8Array, counters: DecodeCounters, out: DriverRecord[] = []): DriverRecord[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let offset = 0;
  while (offset < payload.length) {
    if (payload.length - offset < RECORD_HEADER_SIZE) {
      counters.truncated++;
      break;
    }
    const h = header(view, offset);
    if (h.size < RECORD_HEADER_SIZE || h.size % 8 !== 0) {
      counters.badSize++;
      break;
    }
    if (offset + h.size > payload.length) {
      counters.truncated++;
      break;
    }
    const version = view.getUint16(offset + 2, true);
    let record: DriverRecord | undefined;
    if (version !== RECORD_VERSION) {
      counters.badVersion++;
    } else if (h.kind === RecordKind.exec) {
      record = decodeExec(payload, view, offset, h);
      if (!record) counters.badSize++;
    } else if (h.kind === RecordKind.fork) {
      record = decodeFork(payload, view, offset, h);
      if (!record) counters.badSize++;
    } else if (h.kind === RecordKind.exit) {
      record = decodeExit(payload, view, offset, h);
      if (!record) counters.badSize++;
    } else {
      counters.unknownKind++;
    }
    if (record) {
      counters.records++;
      out.push(record);
    }
    offset += h.size;
  }
  return out;
}
