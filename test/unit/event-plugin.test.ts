/**
 * An event plugin's executable is checked against its manifest's SHA-256 before every start,
 * restarts included: a binary swapped while the plugin ran is never executed (it runs as root).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { EventPlugin } from '../../src/agent/plugins/event-plugin.js';
import type { LoadedManifest } from '../../src/agent/plugins/manifest.js';
import { EventStamp } from '../../src/agent/pipeline/stamp.js';
import { Sequencer } from '../../src/agent/sequencer.js';
import type { HadesError } from '../../src/common/errors.js';
import { Logger } from '../../src/runtime/log.js';
import { waitFor } from '../helpers/agent.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-event-plugin-'));
after(() => rmSync(root, { recursive: true, force: true }));

const FRAME = `const frame = (type, text) => { const body = Buffer.from(text); const h = Buffer.alloc(8); h.writeUInt32LE(body.length, 0); h.writeUInt16LE(type, 4); return Buffer.concat([h, body]); };`;

describe('event plugin: executable hash', () => {
  it('does not run an executable swapped while the plugin ran: the restart is refused before it is started', async () => {
    const binary = path.join(root, 'plugin.mjs');
    const marker = path.join(root, 'swapped-ran');
    // Says HELLO, then exits after a moment: the supervisor restarts it.
    const original = `#!/usr/bin/env node\n${FRAME}\nprocess.stdout.write(frame(1, JSON.stringify({ protocol: 1, plugin: 'acme', version: '1.0.0' })));\nprocess.stdin.resume();\nsetTimeout(() => process.exit(0), 300);\n`;
    writeFileSync(binary, original, { mode: 0o755 });
    const manifest: LoadedManifest = {
      name: 'acme',
      version: '1.0.0',
      protocol: 1,
      executable: binary,
      sha256: createHash('sha256').update(original).digest('hex'),
      file: path.join(root, 'manifest.json'),
      binary,
    };
    const fatal: HadesError[] = [];
    const plugin = new EventPlugin({
      manifest,
      config: {},
      stamp: new EventStamp(new Sequencer(), { name: 'test-host' }, '9.9.9'),
      log: new Logger({ level: 'error', maxBytes: 1 << 20, maxFiles: 1, stream: new PassThrough() }),
      eventsPerSecond: 0,
      maxOpenFiles: 64,
      graceMs: 500,
      emit: () => true,
      onGap: () => undefined,
      onFatal: (error) => fatal.push(error),
    });
    try {
      await plugin.start();
      // Swapped while it runs (the attacker who can write the plugin's folder).
      // A shell script is quick: any run of it leaves its mark.
      writeFileSync(binary, `#!/bin/sh\necho ran >> ${marker}\n`, { mode: 0o755 });
      await waitFor('the plugin given up', () => plugin.process.state === 'failed', 10_000, 20);
      await sleep(300);
      assert.equal(existsSync(marker), false, 'the swapped executable was run');
      assert.ok(fatal.some((e) => e.code === 'HADES_ERR_PLUGIN_HASH_MISMATCH'), fatal.map((e) => e.code).join(', '));
      assert.match(plugin.process.lastError ?? '', /HADES_ERR_PLUGIN_HASH_MISMATCH/);
      assert.equal(plugin.process.pid, undefined);
    } finally {
      await plugin.stop();
    }
  });
});
