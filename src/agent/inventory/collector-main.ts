/**
 * The inventory collector's process: frames in on standard input, frames out on standard output
 * (docs/plugins.md). The agent starts it as its built-in `inventory` plugin; `hades query` starts
 * one for a single query. End of standard input means stop.
 */
import { readFileSync } from 'node:fs';
import { FrameReader, encodeFrame } from '../../common/codec/frames.js';
import { Collector } from './collector.js';
import { allTables } from './tables/index.js';

// The agent names its version (it may differ from package.json in tests); alone, we read ours.
const version = process.argv[2] ?? (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const collector = new Collector(
  {
    send: (type, payload) =>
      new Promise((resolve) => {
        if (process.stdout.write(encodeFrame(type, payload))) resolve();
        else process.stdout.once('drain', () => resolve());
      }),
  },
  allTables,
  version,
);

const reader = new FrameReader();
process.stdin.on('data', (chunk: Buffer) => {
  let frames;
  try {
    frames = reader.push(chunk);
  } catch (error) {
    process.stderr.write(`inventory collector: ${String(error)}\n`);
    process.exit(65);
  }
  for (const frame of frames) collector.onFrame(frame.type, frame.payload);
});
process.stdin.on('end', () => {
  collector.stop();
  process.exit(0);
});
// The agent closes our pipe when it goes; a write after that is no reason for a stack trace.
process.stdout.on('error', () => process.exit(0));

await collector.hello();
