/**
 * utmp/wtmp records as glibc writes them on 64-bit Linux (struct utmp, 384 bytes, little-endian):
 *
 *   0 ut_type (int16) + 2 padding, 4 ut_pid (int32), 8 ut_line[32], 40 ut_id[4], 44 ut_user[32],
 *   76 ut_host[256], 332 ut_exit (2 x int16), 336 ut_session (int32),
 *   340 ut_tv (tv_sec int32, tv_usec int32), 348 ut_addr_v6 (4 x int32, network order), 364 reserved[20]
 */
import { formatIpv6 } from './proc.js';

export const UTMP_RECORD_BYTES = 384;

export const UtmpType = {
  empty: 0,
  runLevel: 1,
  bootTime: 2,
  newTime: 3,
  oldTime: 4,
  initProcess: 5,
  loginProcess: 6,
  userProcess: 7,
  deadProcess: 8,
  accounting: 9,
} as const;

const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'run_level',
  2: 'boot',
  3: 'time_change',
  4: 'time_change',
  5: 'init',
  6: 'login_process',
  7: 'login',
  8: 'logout',
  9: 'accounting',
};

export interface UtmpRecord {
  readonly type: number;
  /** login, logout, boot, run_level, shutdown, ... */
  readonly kind: string;
  readonly pid: number;
  readonly line: string;
  readonly id: string;
  readonly user: string;
  readonly host: string;
  readonly session: number;
  /** Unix seconds. */
  readonly time: number;
  readonly address?: string;
}

function text(record: Buffer, offset: number, length: number): string {
  const field = record.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

function address(record: Buffer): string | undefined {
  const bytes = record.subarray(348, 364);
  if (bytes.every((b) => b === 0)) return undefined;
  if (bytes.subarray(4).every((b) => b === 0)) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  return formatIpv6(bytes);
}

/** One record, or undefined when it is not a plausible one (a corrupt or foreign file). */
export function parseUtmpRecord(record: Buffer): UtmpRecord | undefined {
  if (record.length !== UTMP_RECORD_BYTES) return undefined;
  const type = record.readInt16LE(0);
  if (type < 0 || type > 9) return undefined;
  const time = record.readInt32LE(340);
  const usec = record.readInt32LE(344);
  if (time < 0 || usec < 0 || usec >= 1_000_000) return undefined;
  const user = text(record, 44, 32);
  const line = text(record, 8, 32);
  let kind = TYPE_NAMES[type] ?? 'empty';
  // `shutdown` is written as a RUN_LVL record with that user name, `reboot` as BOOT_TIME.
  if (type === UtmpType.runLevel && user === 'shutdown') kind = 'shutdown';
  const addr = address(record);
  return { type, kind, pid: record.readInt32LE(4), line, id: text(record, 40, 4), user, host: text(record, 76, 256), session: record.readInt32LE(336), time, ...(addr ? { address: addr } : {}) };
}

export interface UtmpParse {
  readonly records: UtmpRecord[];
  /** Records that did not look like utmp records. */
  readonly malformed: number;
  /** Bytes at the end that do not make a whole record. */
  readonly trailing: number;
}

export function parseUtmp(data: Buffer): UtmpParse {
  const records: UtmpRecord[] = [];
  let malformed = 0;
  const whole = data.length - (data.length % UTMP_RECORD_BYTES);
  for (let offset = 0; offset < whole; offset += UTMP_RECORD_BYTES) {
    const record = parseUtmpRecord(data.subarray(offset, offset + UTMP_RECORD_BYTES));
    if (!record) malformed++;
    else if (record.type !== UtmpType.empty) records.push(record);
  }
  return { records, malformed, trailing: data.length - whole };
}

export interface UtmpFields {
  readonly type: number;
  readonly pid?: number;
  readonly line?: string;
  readonly id?: string;
  readonly user?: string;
  readonly host?: string;
  readonly session?: number;
  readonly time: number;
  /** Dotted IPv4 or 16 raw bytes. */
  readonly address?: string | Uint8Array;
}

/** Writes one record (for tests and fixtures). */
export function encodeUtmpRecord(fields: UtmpFields): Buffer {
  const record = Buffer.alloc(UTMP_RECORD_BYTES);
  record.writeInt16LE(fields.type, 0);
  record.writeInt32LE(fields.pid ?? 0, 4);
  record.write(fields.line ?? '', 8, 32, 'utf8');
  record.write(fields.id ?? '', 40, 4, 'utf8');
  record.write(fields.user ?? '', 44, 32, 'utf8');
  record.write(fields.host ?? '', 76, 256, 'utf8');
  record.writeInt32LE(fields.session ?? 0, 336);
  record.writeInt32LE(fields.time, 340);
  if (typeof fields.address === 'string') {
    const parts = fields.address.split('.').map(Number);
    for (let i = 0; i < 4; i++) record[348 + i] = parts[i] ?? 0;
  } else if (fields.address) {
    Buffer.from(fields.address).copy(record, 348, 0, 16);
  }
  return record;
}
