/**
 * Decoder of the driver's binary records (driver/PROTOCOL.md, driver/src/wire.h). Pure: bytes
 * in, plain objects out. Every malformed, truncated or unknown record is counted and skipped,
 * never thrown, because one bad record must not cost the ones after it.
 */
import { asBuffer, copyOf, cString, decodeRange, splitRange, timeNs, u64 } from './bytes.js';
import { securityDecoders, type SecurityRecord } from './security-records.js';

export const RECORD_VERSION = 1;
/** EXEC records are version 2 (executable identity appended); version 1 is still decoded. */
export const EXEC_VERSION = 2;
export const RECORD_HEADER_SIZE = 32;
export const EXEC_FIXED_SIZE = 384;
export const EXEC_V1_FIXED_SIZE = 336;
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
  exeSetuidRoot: 1 << 19,
  /** EXEC: the file on standard input (stdinPath) had no link left: deleted since it was opened. */
  stdinDeleted: 1 << 25,
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
  /** EXIT (cn_proc): the last thread's exit message was lost: the exit code is not known. */
  exitCode: 1 << 22,
} as const;
export type MissingFieldName = keyof typeof MissingField;
/** header.missing bit of EXEC v2: the exe identity (exeIno..exeCtimeNs) could not be read and is 0. */
export const MISSING_EXE_ID = 1 << 21;

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
  /** The path of the regular file on standard input (`cmd < file`); '' for none or not read. */
  readonly stdinPath: string;
  readonly argv: readonly string[];
  /** Size of the whole argument area in the process, before truncation. */
  readonly argvBytes: number;
  /** Arguments, those cut off by truncation included; 0 = not known (cn_proc when argv is whole, older drivers). */
  readonly argc: number;
  /**
   * Identity of the executed file, read in the kernel from the new image (cn_proc: stat of
   * /proc/PID/exe), for keying the hash cache without a racy stat() of the path. All 0 in
   * version 1 records and when header.missing has MISSING_EXE_ID.
   */
  readonly exeIno: number;
  /** Device of the file's filesystem, major << 20 | minor. */
  readonly exeDev: number;
  readonly exeSize: number;
  /**
   * Nanoseconds since the epoch as a double: exact to 256 ns at today's dates, finer than the
   * filesystem's own timestamp granularity (a clock tick).
   */
  readonly exeMtimeNs: number;
  /** Same for the inode change time, which unlike mtime cannot be set back from user space. */
  readonly exeCtimeNs: number;
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
  /** High-rate records skipped undecoded while the agent was over its CPU budget or backlogged. */
  shed: number;
}

export function newDecodeCounters(): DecodeCounters {
  return { records: 0, truncated: 0, badSize: 0, badVersion: 0, unknownKind: 0, shed: 0 };
}

const NO_ADDRESS = new Uint8Array(0);


function decodeFd(bytes: Uint8Array, view: DataView, offset: number): FdInfo {
  const kind = FdKind[view.getUint8(offset)] ?? 'unknown';
  const socket = kind === 'socket';
  return {
    kind,
    family: view.getUint8(offset + 1),
    sockType: view.getUint16(offset + 2, true),
    protocol: view.getUint16(offset + 4, true),
    inode: u64(view, offset + 8),
    localPort: view.getUint16(offset + 16, true),
    remotePort: view.getUint16(offset + 18, true),
    rdev: view.getUint32(offset + 20, true),
    // Only sockets have addresses; they are copied so that the frame buffer can be released.
    localAddr: socket ? copyOf(bytes, offset + 24, offset + 40) : NO_ADDRESS,
    remoteAddr: socket ? copyOf(bytes, offset + 40, offset + 56) : NO_ADDRESS,
  };
}

// The decoders build each record as one object literal of fixed shape (no spread), so that V8
// keeps them monomorphic and optimized: they run for every event of a storm.

/** `fixed` is the version's fixed size: v1 ends before the identity fields, so its tail starts earlier. */
function decodeExec(bytes: Buffer, view: DataView, o: number, size: number, fixed: number): ExecRecord | undefined {
  if (size < fixed) return undefined;
  const filenameLen = view.getUint16(o + 312, true);
  const exeLen = view.getUint16(o + 314, true);
  const cwdLen = view.getUint16(o + 316, true);
  const ttyLen = view.getUint16(o + 318, true);
  const cgroupLen = view.getUint16(o + 320, true);
  // 0 in records of drivers before it (the field was reserved).
  const stdinLen = view.getUint16(o + 322, true);
  const argvLen = view.getUint32(o + 324, true);
  if (fixed + filenameLen + exeLen + cwdLen + ttyLen + cgroupLen + stdinLen + argvLen > size) return undefined;
  const v2 = fixed === EXEC_FIXED_SIZE;
  const filenameAt = o + fixed;
  const exeAt = filenameAt + filenameLen;
  const cwdAt = exeAt + exeLen;
  const ttyAt = cwdAt + cwdLen;
  const cgroupAt = ttyAt + ttyLen;
  const stdinAt = cgroupAt + cgroupLen;
  const argvAt = stdinAt + stdinLen;
  return {
    kind: view.getUint16(o, true),
    size,
    ktimeNs: u64(view, o + 8),
    pid: view.getUint32(o + 16, true),
    tid: view.getUint32(o + 20, true),
    flags: view.getUint32(o + 24, true),
    missing: view.getUint32(o + 28, true),
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
    comm: cString(bytes, o + 128, o + 144),
    fds: [decodeFd(bytes, view, o + 144), decodeFd(bytes, view, o + 144 + FD_INFO_SIZE), decodeFd(bytes, view, o + 144 + 2 * FD_INFO_SIZE)],
    filename: decodeRange(bytes, filenameAt, exeAt),
    exePath: decodeRange(bytes, exeAt, cwdAt),
    cwd: decodeRange(bytes, cwdAt, ttyAt),
    tty: decodeRange(bytes, ttyAt, cgroupAt),
    cgroupPath: decodeRange(bytes, cgroupAt, stdinAt),
    stdinPath: stdinLen === 0 ? '' : decodeRange(bytes, stdinAt, argvAt),
    argv: splitRange(bytes, argvAt, argvAt + argvLen),
    argvBytes: view.getUint32(o + 328, true),
    argc: view.getUint32(o + 332, true),
    exeIno: v2 ? u64(view, o + 336) : 0,
    exeDev: v2 ? view.getUint32(o + 376, true) : 0,
    exeSize: v2 ? u64(view, o + 344) : 0,
    exeMtimeNs: v2 ? timeNs(view, o + 352, o + 368) : 0,
    exeCtimeNs: v2 ? timeNs(view, o + 360, o + 372) : 0,
  };
}

function decodeFork(bytes: Buffer, view: DataView, o: number, size: number): ForkRecord | undefined {
  if (size < FORK_SIZE) return undefined;
  return {
    kind: view.getUint16(o, true),
    size,
    ktimeNs: u64(view, o + 8),
    pid: view.getUint32(o + 16, true),
    tid: view.getUint32(o + 20, true),
    flags: view.getUint32(o + 24, true),
    missing: view.getUint32(o + 28, true),
    type: 'fork',
    childStartNs: u64(view, o + 32),
    parentStartNs: u64(view, o + 40),
    cgroupId: u64(view, o + 48),
    childPid: view.getUint32(o + 56, true),
    ppid: view.getUint32(o + 60, true),
    uid: view.getUint32(o + 64, true),
    gid: view.getUint32(o + 68, true),
    comm: cString(bytes, o + 72, o + 88),
  };
}

function decodeExit(bytes: Buffer, view: DataView, o: number, size: number): ExitRecord | undefined {
  if (size < EXIT_SIZE) return undefined;
  return {
    kind: view.getUint16(o, true),
    size,
    ktimeNs: u64(view, o + 8),
    pid: view.getUint32(o + 16, true),
    tid: view.getUint32(o + 20, true),
    flags: view.getUint32(o + 24, true),
    missing: view.getUint32(o + 28, true),
    type: 'exit',
    startNs: u64(view, o + 32),
    exitCode: view.getUint32(o + 40, true),
    ppid: view.getUint32(o + 44, true),
    comm: cString(bytes, o + 48, o + 64),
  };
}

/**
 * Decodes the records of one RECORDS frame. A record whose size field is impossible ends the
 * frame (nothing after it can be located); others that cannot be decoded are skipped.
 */
export function decodeRecords(
  bytes: Uint8Array,
  counters: DecodeCounters,
  out: (DriverRecord | SecurityRecord)[] = [],
  /** Kinds to skip without decoding (load shedding); each skipped record is counted in `shed`. */
  shed?: ReadonlySet<number>,
): (DriverRecord | SecurityRecord)[] {
  const payload = asBuffer(bytes);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let offset = 0;
  while (offset < payload.length) {
    if (payload.length - offset < RECORD_HEADER_SIZE) {
      counters.truncated++;
      break;
    }
    const kind = view.getUint16(offset, true);
    const size = view.getUint32(offset + 4, true);
    if (size < RECORD_HEADER_SIZE || size % 8 !== 0) {
      counters.badSize++;
      break;
    }
    if (offset + size > payload.length) {
      counters.truncated++;
      break;
    }
    if (shed?.has(kind)) {
      counters.shed++;
      offset += size;
      continue;
    }
    const version = view.getUint16(offset + 2, true);
    let record: DriverRecord | SecurityRecord | undefined;
    const security = securityDecoders.get(kind);
    if (kind === RecordKind.exec) {
      if (version === EXEC_VERSION || version === RECORD_VERSION) {
        record = decodeExec(payload, view, offset, size, version === EXEC_VERSION ? EXEC_FIXED_SIZE : EXEC_V1_FIXED_SIZE);
        if (!record) counters.badSize++;
      } else {
        counters.badVersion++;
      }
    } else if (version !== RECORD_VERSION) {
      counters.badVersion++;
    } else if (kind === RecordKind.fork) {
      record = decodeFork(payload, view, offset, size);
      if (!record) counters.badSize++;
    } else if (kind === RecordKind.exit) {
      record = decodeExit(payload, view, offset, size);
      if (!record) counters.badSize++;
    } else if (security) {
      record = security(payload, view, offset, size);
      if (!record) counters.badSize++;
    } else {
      counters.unknownKind++;
    }
    if (record) {
      counters.records++;
      out.push(record);
    }
    offset += size;
  }
  return out;
}
