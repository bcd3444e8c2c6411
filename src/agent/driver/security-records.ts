/**
 * Decoder of the driver's security records (kinds 4..18: network, DNS, ptrace, memfd, module,
 * privilege, file, kill, process rename; driver/PROTOCOL.md sections 2.6-2.16). Same rules as the process
 * records: one object literal of fixed shape per record, nothing thrown, impossible lengths
 * reported as undefined so that the caller counts and skips them.
 */
import { copyOf, cString, decodeRange, u64 } from './bytes.js';
import type { RecordHeader } from './records.js';

export const SecurityKind = {
  connect: 4,
  accept: 5,
  listen: 6,
  dns: 7,
  ptrace: 8,
  memfd: 9,
  module: 10,
  privilege: 11,
  fileCreate: 12,
  fileRename: 13,
  fileDelete: 14,
  fileChmod: 15,
  kill: 16,
  fileOpen: 17,
  procRename: 18,
  fileTimes: 19,
} as const;

/** FILE_TIMES `given`: which times the call set, and how (driver/src/wire.h HADES_TIMES_*). */
export const TimesGiven = { atime: 1, mtime: 2, atimeNow: 4, mtimeNow: 8 } as const;

export const SecurityFlag = {
  modeExec: 0x400,
  modeSetuid: 0x800,
  modeSetgid: 0x1000,
  fileCreated: 0x2000,
  pathTruncated: 0x4000,
  pathFromFd: 0x8000,
  payloadTruncated: 0x10000,
  killBroadcast: 0x20000,
  killGroup: 0x40000,
  linkHard: 0x100000,
  linkSymbolic: 0x200000,
  ia32: 0x400000,
  /** PROC_RENAME: sent by the driver's loader for renames over the bound that no later record carried. */
  renameCatchUp: 0x800000,
  /** FILE_OPEN: a file freshly written in a temporary folder (not a FILE_SECRET); mode = its age in ms, writerPid its writer. */
  openFresh: 0x1000000,
} as const;

export const SecurityMissing = {
  target: 0x8000,
  path: 0x10000,
  addr: 0x20000,
  payload: 0x40000,
  mode: 0x80000,
  name: 0x100000,
} as const;

/** Fields every security record has: the header and the acting process (section 2.6). */
interface Base extends RecordHeader {
  readonly startNs: number;
  readonly cgroupId: number;
  readonly ppid: number;
  readonly uid: number;
  readonly gid: number;
  readonly euid: number;
  readonly egid: number;
  readonly loginuid: number;
  readonly comm: string;
  /** The syscall's return value: >= 0 success, -errno failure. */
  readonly result: number;
}

export interface SocketRecord extends Base {
  readonly type: 'connect' | 'accept' | 'listen';
  readonly fd: number;
  readonly family: number;
  readonly sockType: number;
  readonly protocol: number;
  readonly localPort: number;
  readonly remotePort: number;
  /** 1 the syscall, 2 an async TCP handshake completed, 3 it failed. */
  readonly origin: number;
  readonly repeatCount: number;
  readonly backlog: number;
  readonly localAddr: Uint8Array;
  readonly remoteAddr: Uint8Array;
  /** AF_UNIX path. */
  readonly path: string;
}

export interface DnsRecord extends Base {
  readonly type: 'dns';
  readonly fd: number;
  readonly family: number;
  readonly protocol: number;
  readonly localPort: number;
  readonly remotePort: number;
  /** 1 query (sent to port 53), 2 answer (received from it). */
  readonly direction: number;
  readonly syscall: number;
  readonly payloadOrigLen: number;
  readonly localAddr: Uint8Array;
  readonly remoteAddr: Uint8Array;
  readonly payload: Uint8Array;
}

export interface PtraceRecord extends Base {
  readonly type: 'ptrace';
  readonly request: number;
  readonly targetPid: number;
  readonly targetTgid: number;
  readonly targetStartNs: number;
  readonly targetComm: string;
}

export interface MemfdRecord extends Base {
  readonly type: 'memfd_create';
  readonly memfdFlags: number;
  readonly name: string;
}

export interface ModuleRecord extends Base {
  readonly type: 'module_load';
  readonly syscall: number;
  readonly fd: number;
  readonly moduleFlags: number;
  readonly name: string;
  readonly path: string;
}

export interface PrivilegeRecord extends Base {
  readonly type: 'privilege_change';
  readonly syscall: number;
  readonly changed: number;
  /** uid, gid, euid, egid, suid, sgid, fsuid, fsgid before and after the call. */
  readonly oldIds: readonly number[];
  readonly newIds: readonly number[];
  /** Effective capabilities before and after, as [low 32 bits, high 32 bits]. */
  readonly oldCapEffective: readonly [number, number];
  readonly newCapEffective: readonly [number, number];
}

export interface FileRecord extends Base {
  readonly type: 'file_create' | 'file_rename' | 'file_delete' | 'file_chmod' | 'file_open';
  readonly syscall: number;
  readonly opFlags: number;
  readonly mode: number;
  readonly fileMode: number;
  readonly inode: number;
  /** OPEN: the filesystem's device, major << 20 | minor; 0 for the other kinds. */
  readonly dev: number;
  /** OPEN with SecurityFlag.openFresh: the process (tgid) that wrote the file; else 0. */
  readonly writerPid: number;
  readonly path: string;
  /** RENAME: the new path; CREATE of a link: the existing file (hard) or the target as given (symbolic). */
  readonly path2: string;
}

/** A file's access or modification time set to a given time (utime, utimes, futimesat, utimensat). */
export interface FileTimesRecord extends Base {
  readonly type: 'file_times';
  readonly syscall: number;
  /** TimesGiven bits. */
  readonly given: number;
  /** utimensat flags (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH). */
  readonly opFlags: number;
  /** Seconds since the epoch (as the kernel's 64-bit time: outside ±2^53 they lose precision). */
  readonly atimeSec: number;
  readonly mtimeSec: number;
  /** The file's inode when the call named it by descriptor, else 0. */
  readonly inode: number;
  readonly path: string;
}

export interface KillRecord extends Base {
  readonly type: 'kill';
  readonly syscall: number;
  readonly targetPid: number;
  readonly targetTgid: number;
  readonly signal: number;
}

/** PROC_RENAME: the process (its thread group leader) changed its name other than by exec. */
export interface RenameRecord extends Base {
  readonly type: 'process_rename';
  /** The renamed thread: the thread group leader (= pid). */
  readonly targetTid: number;
  readonly oldComm: string;
  readonly newComm: string;
  /** Renames of this process over the driver's rate bound since its previous record; catch-up: the
   * renames this record stands for, the newest of which gave newComm. */
  readonly unreported: number;
  /** Sent by the driver's loader, not at the rename: the newest of renames over the bound, once the
   * process had stopped renaming for the bound's window (driver/PROTOCOL.md 2.16). */
  readonly catchUp: boolean;
}

export type SecurityRecord = SocketRecord | DnsRecord | PtraceRecord | MemfdRecord | ModuleRecord | PrivilegeRecord | FileRecord | FileTimesRecord | KillRecord | RenameRecord;

type Decode = (bytes: Buffer, view: DataView, o: number, size: number) => SecurityRecord | undefined;


/** The common part, read once per record (the decoders copy it into their own literal). */
function base(bytes: Buffer, view: DataView, o: number, size: number): Base {
  return {
    kind: view.getUint16(o, true),
    size,
    ktimeNs: u64(view, o + 8),
    pid: view.getUint32(o + 16, true),
    tid: view.getUint32(o + 20, true),
    flags: view.getUint32(o + 24, true),
    missing: view.getUint32(o + 28, true),
    startNs: u64(view, o + 32),
    cgroupId: u64(view, o + 40),
    ppid: view.getUint32(o + 48, true),
    uid: view.getUint32(o + 52, true),
    gid: view.getUint32(o + 56, true),
    euid: view.getUint32(o + 60, true),
    egid: view.getUint32(o + 64, true),
    loginuid: view.getUint32(o + 68, true),
    comm: cString(bytes, o + 72, o + 88),
    result: view.getInt32(o + 88, true),
  };
}

const SOCKET_TYPES = { 4: 'connect', 5: 'accept', 6: 'listen' } as const;
const FILE_TYPES = { 12: 'file_create', 13: 'file_rename', 14: 'file_delete', 15: 'file_chmod', 17: 'file_open' } as const;

const decodeSocket: Decode = (bytes, view, o, size) => {
  if (size < 152) return undefined;
  const pathLen = view.getUint16(o + 116, true);
  if (152 + pathLen > size) return undefined;
  const b = base(bytes, view, o, size);
  return {
    ...b,
    type: SOCKET_TYPES[b.kind as 4 | 5 | 6],
    fd: view.getUint32(o + 92, true),
    family: view.getUint16(o + 96, true),
    sockType: view.getUint16(o + 98, true),
    protocol: view.getUint16(o + 100, true),
    localPort: view.getUint16(o + 102, true),
    remotePort: view.getUint16(o + 104, true),
    origin: view.getUint8(o + 106),
    repeatCount: view.getUint32(o + 108, true),
    backlog: view.getUint32(o + 112, true),
    localAddr: copyOf(bytes, o + 120, o + 136),
    remoteAddr: copyOf(bytes, o + 136, o + 152),
    path: decodeRange(bytes, o + 152, o + 152 + pathLen),
  };
};

const decodeDns: Decode = (bytes, view, o, size) => {
  if (size < 144) return undefined;
  const payloadLen = view.getUint16(o + 106, true);
  if (144 + payloadLen > size) return undefined;
  return {
    ...base(bytes, view, o, size),
    type: 'dns',
    fd: view.getUint32(o + 92, true),
    family: view.getUint16(o + 96, true),
    protocol: view.getUint16(o + 98, true),
    localPort: view.getUint16(o + 100, true),
    remotePort: view.getUint16(o + 102, true),
    direction: view.getUint8(o + 104),
    syscall: view.getUint8(o + 105),
    payloadOrigLen: view.getUint32(o + 108, true),
    localAddr: copyOf(bytes, o + 112, o + 128),
    remoteAddr: copyOf(bytes, o + 128, o + 144),
    payload: copyOf(bytes, o + 144, o + 144 + payloadLen),
  };
};

const decodePtrace: Decode = (bytes, view, o, size) => {
  if (size < 144) return undefined;
  return {
    ...base(bytes, view, o, size),
    type: 'ptrace',
    request: view.getUint32(o + 92, true),
    targetPid: view.getUint32(o + 96, true),
    targetTgid: view.getUint32(o + 100, true),
    targetStartNs: u64(view, o + 104),
    targetComm: cString(bytes, o + 128, o + 144),
  };
};

const decodeMemfd: Decode = (bytes, view, o, size) => {
  if (size < 104) return undefined;
  const nameLen = view.getUint16(o + 96, true);
  if (104 + nameLen > size) return undefined;
  return { ...base(bytes, view, o, size), type: 'memfd_create', memfdFlags: view.getUint32(o + 92, true), name: decodeRange(bytes, o + 104, o + 104 + nameLen) };
};

const decodeModule: Decode = (bytes, view, o, size) => {
  if (size < 160) return undefined;
  const pathLen = view.getUint16(o + 94, true);
  if (160 + pathLen > size) return undefined;
  return {
    ...base(bytes, view, o, size),
    type: 'module_load',
    syscall: view.getUint16(o + 92, true),
    fd: view.getInt32(o + 96, true),
    moduleFlags: view.getUint32(o + 100, true),
    name: cString(bytes, o + 104, o + 160),
    path: decodeRange(bytes, o + 160, o + 160 + pathLen),
  };
};

const ids = (view: DataView, at: number): number[] => {
  const out = new Array<number>(8);
  for (let i = 0; i < 8; i++) out[i] = view.getUint32(at + 4 * i, true);
  return out;
};

const decodePrivilege: Decode = (bytes, view, o, size) => {
  if (size < 224) return undefined;
  return {
    ...base(bytes, view, o, size),
    type: 'privilege_change',
    syscall: view.getUint16(o + 92, true),
    changed: view.getUint16(o + 94, true),
    oldIds: ids(view, o + 112),
    newIds: ids(view, o + 144),
    oldCapEffective: [view.getUint32(o + 176, true), view.getUint32(o + 180, true)],
    newCapEffective: [view.getUint32(o + 200, true), view.getUint32(o + 204, true)],
  };
};

const decodeFile: Decode = (bytes, view, o, size) => {
  if (size < 128) return undefined;
  const pathLen = view.getUint16(o + 120, true);
  const path2Len = view.getUint16(o + 122, true);
  if (128 + pathLen + path2Len > size) return undefined;
  const b = base(bytes, view, o, size);
  return {
    ...b,
    type: FILE_TYPES[b.kind as 12 | 13 | 14 | 15 | 17],
    syscall: view.getUint16(o + 92, true),
    opFlags: view.getUint32(o + 96, true),
    mode: view.getUint32(o + 100, true),
    fileMode: view.getUint32(o + 104, true),
    dev: view.getUint32(o + 108, true),
    inode: u64(view, o + 112),
    writerPid: view.getUint32(o + 124, true),
    path: decodeRange(bytes, o + 128, o + 128 + pathLen),
    path2: decodeRange(bytes, o + 128 + pathLen, o + 128 + pathLen + path2Len),
  };
};

const decodeFileTimes: Decode = (bytes, view, o, size) => {
  if (size < 136) return undefined;
  const pathLen = view.getUint16(o + 128, true);
  if (136 + pathLen > size) return undefined;
  return {
    ...base(bytes, view, o, size),
    type: 'file_times',
    syscall: view.getUint16(o + 92, true),
    given: view.getUint16(o + 94, true),
    opFlags: view.getUint32(o + 96, true),
    atimeSec: Number(view.getBigInt64(o + 104, true)),
    mtimeSec: Number(view.getBigInt64(o + 112, true)),
    inode: u64(view, o + 120),
    path: decodeRange(bytes, o + 136, o + 136 + pathLen),
  };
};

const decodeKill: Decode = (bytes, view, o, size) => {
  if (size < 112) return undefined;
  return {
    ...base(bytes, view, o, size),
    type: 'kill',
    syscall: view.getUint16(o + 92, true),
    targetPid: view.getInt32(o + 96, true),
    targetTgid: view.getInt32(o + 100, true),
    signal: view.getUint32(o + 104, true),
  };
};

const decodeRename: Decode = (bytes, view, o, size) => {
  if (size < 136) return undefined;
  return {
    ...base(bytes, view, o, size),
    type: 'process_rename',
    targetTid: view.getUint32(o + 92, true),
    oldComm: cString(bytes, o + 96, o + 112),
    newComm: cString(bytes, o + 112, o + 128),
    unreported: view.getUint32(o + 128, true),
    catchUp: (view.getUint32(o + 24, true) & SecurityFlag.renameCatchUp) !== 0,
  };
};

/** Decoders by record kind. Security records are rare next to exec storms, so a spread of the
 * shared base is affordable here, unlike in the process decoders. */
export const securityDecoders: ReadonlyMap<number, Decode> = new Map<number, Decode>([
  [SecurityKind.connect, decodeSocket],
  [SecurityKind.accept, decodeSocket],
  [SecurityKind.listen, decodeSocket],
  [SecurityKind.dns, decodeDns],
  [SecurityKind.ptrace, decodePtrace],
  [SecurityKind.memfd, decodeMemfd],
  [SecurityKind.module, decodeModule],
  [SecurityKind.privilege, decodePrivilege],
  [SecurityKind.fileCreate, decodeFile],
  [SecurityKind.fileRename, decodeFile],
  [SecurityKind.fileDelete, decodeFile],
  [SecurityKind.fileChmod, decodeFile],
  [SecurityKind.kill, decodeKill],
  [SecurityKind.fileOpen, decodeFile],
  [SecurityKind.procRename, decodeRename],
  [SecurityKind.fileTimes, decodeFileTimes],
]);
