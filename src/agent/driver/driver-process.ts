/**
 * The kernel driver as a plugin: its frames (driver/PROTOCOL.md), its commands, and a
 * PluginProcess set up with the driver's error codes. Supervision itself (process group,
 * restart with backoff, gap, grace period) lives in ../plugins/plugin-process.ts.
 */
import { PluginFrame } from '../../common/plugins/protocol.js';
import { PluginProcess, type PluginAck, type PluginGap, type PluginHandlers, type PluginHello } from '../plugins/plugin-process.js';

export const FrameType = PluginFrame;

export const DRIVER_PROTOCOL = 1;

export interface DriverHook {
  readonly name: string;
  readonly type: string;
  readonly active: boolean;
  readonly error: string | null;
}

export interface DriverHello extends PluginHello {
  readonly protocol: number;
  readonly driver: string;
  readonly version: string;
  readonly backend: 'ebpf' | 'cnproc';
  readonly hooks: readonly DriverHook[];
  readonly argv_max: number;
  readonly boot_time_ns: number;
  readonly [extra: string]: unknown;
}

export interface DriverStats {
  readonly hooks: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly loader?: Readonly<Record<string, number>>;
}

/** The driver's answer to a FILTER or HOOK command. */
export type DriverAck = PluginAck;

export const FilterOp = { add: 1, del: 2, clear: 3, set: 4 } as const;
export const FilterTarget = { pidDeny: 1, exeDeny: 2, cgroupDeny: 3, cgroupAllow: 4, cgroupMode: 5, filePrefix: 6, protectedPid: 7, unixPath: 8, connectDedupMs: 9, fileQuiet: 10, fileSecret: 11 } as const;

/** FILTER payload: request id, op, target, value (driver/PROTOCOL.md). */
export function encodeFilter(requestId: number, op: number, target: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + value.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, requestId, true);
  view.setUint8(4, op);
  view.setUint8(5, target);
  view.setUint32(8, value.length, true);
  out.set(value, 12);
  return out;
}

/** HOOK payload: request id, enable flag, hook addressed by name. */
export function encodeHook(requestId: number, enable: boolean, name: string): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const out = new Uint8Array(8 + nameBytes.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, requestId, true);
  view.setUint8(4, enable ? 1 : 0);
  view.setUint16(6, 0xffff, true);
  out.set(nameBytes, 8);
  return out;
}

export type DriverGap = PluginGap;

/** The plugin handlers, with RECORDS frames decoded by the caller instead of `onFrame`. */
export interface DriverHandlers extends Omit<PluginHandlers<DriverHello, DriverStats>, 'onFrame'> {
  onRecords(payload: Uint8Array): void;
}

export interface DriverOptions {
  readonly binary: string;
  readonly args: readonly string[];
  readonly graceMs?: number;
  readonly maxFailedStarts?: number;
  readonly maxOpenFiles?: number;
  /** Checked before every start, restarts included (the agent's: the manifest's SHA-256); returns the path to start. */
  readonly verify?: () => string | void;
}

export class DriverProcess extends PluginProcess<DriverHello, DriverStats> {
  constructor(options: DriverOptions, handlers: DriverHandlers) {
    super(
      {
        name: 'driver',
        ...options,
        protocol: DRIVER_PROTOCOL,
        // Without the driver the agent cannot run: its failure to come up is the agent's, at once.
        retryBeforeFirstHello: false,
        // Loading and attaching every hook takes a few seconds on a slow host.
        helloTimeoutMs: 60_000,
        codes: { notFound: 'HADES_ERR_DRIVER_NOT_FOUND', failed: 'HADES_ERR_DRIVER_FAILED', protocol: 'HADES_ERR_DRIVER_PROTOCOL' },
        checkHello: (hello) => (Array.isArray(hello['hooks']) ? undefined : 'HELLO has no hooks list'),
      },
      {
        ...handlers,
        onStats: (stats) => {
          if (stats.hooks) handlers.onStats?.(stats);
        },
        onFrame: (type, payload) => {
          // Unknown frame types are skipped: a newer driver may send more.
          if (type === FrameType.records) handlers.onRecords(payload);
        },
      },
    );
  }
}
