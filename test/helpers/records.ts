/** Builds driver records byte by byte, following driver/src/wire.h, for decoder tests. */
export interface ExecSpec {
  pid?: number;
  ppid?: number;
  flags?: number;
  missing?: number;
  comm?: string;
  filename?: string;
  exe?: string;
  cwd?: string;
  tty?: string;
  cgroup?: string;
  /** The path of a file on standard input (stdin_path, after cgroup_path). */
  stdin?: string;
  argv?: Uint8Array;
  argvOrigLen?: number;
  version?: number;
}

const enc = new TextEncoder();

export function recordHeader(view: DataView, kind: number, size: number, spec: { pid?: number; flags?: number; missing?: number; version?: number }): void {
  view.setUint16(0, kind, true);
  view.setUint16(2, spec.version ?? 1, true);
  view.setUint32(4, size, true);
  view.setUint32(8, 1_000_000, true);
  view.setUint32(16, spec.pid ?? 100, true);
  view.setUint32(20, spec.pid ?? 100, true);
  view.setUint32(24, spec.flags ?? 0, true);
  view.setUint32(28, spec.missing ?? 0, true);
}

export function execRecord(spec: ExecSpec = {}): Uint8Array {
  const parts = [spec.filename ?? '/bin/true', spec.exe ?? '/usr/bin/true', spec.cwd ?? '/', spec.tty ?? '', spec.cgroup ?? '/', spec.stdin ?? ''].map((s) => enc.encode(s));
  const argv = spec.argv ?? enc.encode('true\0x');
  const tail = parts.reduce((a, p) => a + p.length, 0) + argv.length;
  const size = Math.ceil((336 + tail) / 8) * 8;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  recordHeader(view, 1, size, spec);
  view.setUint32(64, spec.ppid ?? 1, true);
  out.set(enc.encode(spec.comm ?? 'true'), 128);
  // fd 0 a regular file (HADES_FD_FILE) when its path is given.
  if (spec.stdin !== undefined) out[144] = 4;
  const lengths = [312, 314, 316, 318, 320, 322];
  parts.forEach((p, i) => view.setUint16(lengths[i] ?? 0, p.length, true));
  view.setUint32(324, argv.length, true);
  view.setUint32(328, spec.argvOrigLen ?? argv.length, true);
  let cursor = 336;
  for (const p of [...parts, argv]) {
    out.set(p, cursor);
    cursor += p.length;
  }
  return out;
}

export function exitRecord(pid: number, waitStatus: number): Uint8Array {
  const out = new Uint8Array(64);
  const view = new DataView(out.buffer);
  recordHeader(view, 3, 64, { pid });
  view.setUint32(40, waitStatus, true);
  out.set(enc.encode('sh'), 48);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
