/**
 * Helpers for agent daemon tests: test plugin manifests, an in-process receiver double that
 * acknowledges batches (and can be taken down), a collecting stream, and agent configs.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Agent } from '../../src/agent/daemon/agent.js';
import { AgentConfigSchema, parseConfig, type AgentConfig } from '../../src/common/config/index.js';
import { HadesError } from '../../src/common/errors.js';
import type { BatchTransport, EventBatch } from '../../src/agent/pipeline/channels.js';
import { projectRoot } from './generated-docs.js';

export const testPlugin = `${projectRoot}test/fixtures/plugins/test-plugin.mjs`;

/** Writes a manifest for the test plugin in one of its modes; returns its path. */
export function pluginManifest(dir: string, name: string, mode: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, `${name}.manifest.json`);
  const sha256 = createHash('sha256').update(readFileSync(testPlugin)).digest('hex');
  writeFileSync(file, JSON.stringify({ name, version: '1.0.0', protocol: 1, executable: testPlugin, args: [mode, name], sha256, ...extra }));
  return file;
}

/** A complete agent configuration from YAML-ish overrides (deep-merged over the defaults). */
export function agentConfig(yaml: string): AgentConfig {
  const result = parseConfig(yaml, AgentConfigSchema);
  if (!result.ok) throw new HadesError('HADES_ERR_CONFIG_INVALID', JSON.stringify(result.problems));
  return result.config;
}

export type AnyEvent = Record<string, any>;

/** The receiver double: stores every batch it acknowledges; `up = false` refuses them. */
export class MemoryTransport implements BatchTransport {
  readonly name: string;
  up = true;
  readonly events: AnyEvent[] = [];
  batches = 0;
  refused = 0;
  /** How long each acknowledgement takes (a slow receiver). */
  delayMs = 0;

  constructor(name = 'server') {
    this.name = name;
  }

  async send(batch: EventBatch): Promise<void> {
    if (!this.up) {
      this.refused++;
      throw new HadesError('HADES_ERR_OUTPUT_FAILED', 'receiver down (test double)');
    }
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.batches++;
    for (const line of batch.data.toString('utf8').split('\n')) if (line) this.events.push(JSON.parse(line) as AnyEvent);
  }

  async close(): Promise<void> {}
}

/** A stream that keeps NDJSON lines as parsed events. */
export class EventSink extends Writable {
  readonly events: AnyEvent[] = [];
  private rest = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    const text = this.rest + chunk.toString('utf8');
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    for (const line of lines) if (line) this.events.push(JSON.parse(line) as AnyEvent);
    callback();
  }
}

export async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 20_000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new HadesError('HADES_ERR_INTERNAL', `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** Live processes (zombies excluded: they are dead, waiting for their parent) whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirNumeric('/proc')) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(name);
    } catch {
      // gone
    }
  }
  return out;
}

function readdirNumeric(dir: string): number[] {
  return readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number);
}

/** An agent of `yaml` whose only output is a MemoryTransport (not started). */
export function memoryAgent(yaml: string): { agent: Agent; transport: MemoryTransport } {
  const transport = new MemoryTransport();
  const agent = new Agent({ config: agentConfig(yaml), version: '0.0.0-test', transports: [transport], stderr: new EventSink() });
  return { agent, transport };
}
