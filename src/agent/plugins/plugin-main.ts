/**
 * The process side of a built-in plugin (the inventory and log collectors, the honeypot): frames in on
 * standard input, frames out on standard output (docs/plugins.md). End of standard input, or
 * SIGTERM, means stop: the plugin stops, what it wrote is flushed, and the process exits. It
 * imports only the frame codec, so a plugin that loads little stays small.
 */
import { readFileSync } from 'node:fs';
import { FrameReader, encodeFrame } from '../../common/codec/frames.js';
import { PluginFrame } from '../../common/plugins/frames.js';

export interface PluginIo {
  send(type: number, payload: Uint8Array): Promise<void>;
}

export interface PluginBody {
  hello(): Promise<void>;
  onFrame(type: number, payload: Uint8Array): void;
  stop(): void | Promise<void>;
}

/** The version the agent names (it may differ from package.json in tests); alone, ours. */
export function pluginVersion(): string {
  return process.argv[2] ?? (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

const encoder = new TextEncoder();

/**
 * A CONFIG frame (`{"request_id":N,"config":{...}}`) checked by `validate`, which gives the
 * configuration or says what is wrong. A refusal is answered here with its coded ACK and gives
 * undefined; the caller acknowledges an accepted one once it is in use.
 */
export function readConfig<C>(io: PluginIo, payload: Uint8Array, validate: (raw: unknown) => C | string): { requestId: number; config: C } | undefined {
  let message: Record<string, unknown> | undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(payload).toString('utf8'));
    message = value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    message = undefined;
  }
  const requestId = typeof message?.['request_id'] === 'number' ? message['request_id'] : 0;
  const config = validate(message?.['config']);
  if (typeof config !== 'string') return { requestId, config };
  void io.send(PluginFrame.ack, encoder.encode(JSON.stringify({ request_id: requestId, ok: false, code: 'HADES_ERR_CONFIG_VALUE', msg: config })));
  return undefined;
}

export async function servePlugin(name: string, make: (io: PluginIo) => PluginBody): Promise<void> {
  // Every write made while the pipe is full waits for the same 'drain'.
  let full: Promise<void> | undefined;
  const plugin = make({
    send: (type, payload) => {
      if (process.stdout.write(encodeFrame(type, payload))) return full ?? Promise.resolve();
      full ??= new Promise((resolve) =>
        process.stdout.once('drain', () => {
          full = undefined;
          resolve();
        }),
      );
      return full;
    },
  });
  const reader = new FrameReader();
  process.stdin.on('data', (chunk: Buffer) => {
    let frames;
    try {
      frames = reader.push(chunk);
    } catch (error) {
      process.stderr.write(`${name}: ${String(error)}\n`);
      process.exit(65);
    }
    for (const frame of frames) plugin.onFrame(frame.type, frame.payload);
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void Promise.resolve(plugin.stop()).finally(() => process.stdout.write('', () => process.exit(0)));
  };
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
  // The agent closes our pipe when it goes; a write after that is no reason for a stack trace.
  process.stdout.on('error', () => process.exit(0));
  await plugin.hello();
}
