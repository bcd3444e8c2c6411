/**
 * The agent's side of its built-in log collector (src/agent/logs/collector.ts): a supervised
 * plugin process run by the agent's own Node binary, like the inventory collector, so that a
 * flood of log lines is parsed, limited and accounted for outside the agent.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentConfig } from '../../common/config/index.js';
import { LOGS_PLUGIN } from '../logs/collector.js';
import { EventPlugin, type EventPluginOptions } from './event-plugin.js';
import type { LoadedManifest } from './manifest.js';

export { LOGS_PLUGIN };

/**
 * V8 flags of the collector: it holds a few lines at a time, so a small young generation and
 * heap keep its resident memory low; code is optimised only once it stays hot (see the
 * inventory collector's flags).
 */
export const LOGS_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--max-old-space-size=64', '--interrupt-budget=1081344'];

export const logsMain = (): string => fileURLToPath(new URL('../logs/collector-main.js', import.meta.url));

export function logsManifest(version: string): LoadedManifest {
  return {
    name: LOGS_PLUGIN,
    version,
    protocol: 1,
    executable: process.execPath,
    args: [...LOGS_NODE_FLAGS, logsMain(), version],
    // Not checked for a built-in (EventPlugin's `builtin`): there is no file to pin.
    sha256: '0'.repeat(64),
    description: 'Built-in log collector: SSH logins and sudo use from journald or auth.log.',
    events: ['ssh_login', 'sudo'],
    file: '(built-in)',
    binary: process.execPath,
  };
}

export type LogsPluginOptions = Omit<EventPluginOptions, 'manifest' | 'config' | 'builtin' | 'onFrame' | 'onExit'> & {
  readonly settings: AgentConfig['plugins']['logs'];
  readonly version: string;
  /** The agent's data folder, where the collector keeps its positions. */
  readonly dataDir?: string;
};

/**
 * Events of the collector kept when it is over its rate limit: successful SSH logins read from
 * the journal. Anyone who can reach sshd can flood failed logins; that flood must not push out
 * the login that succeeded among them. From the journal an sshd line is taken only when sent as
 * root, so no unprivileged user can make one up, and a real success takes a valid credential.
 * Not from syslog files (any local user can write a line there with `logger`), and not sudo (a
 * user with any sudo right can run it in a loop).
 */
export function keepLogEvent(event: Readonly<Record<string, unknown>>): boolean {
  const e = event['event'] as { action?: unknown; outcome?: unknown } | undefined;
  const log = (event['hades'] as { log?: { source?: unknown } } | undefined)?.log;
  return e?.action === 'ssh_login' && e.outcome === 'success' && log?.source === 'journal';
}

/** The built-in log collector as an event plugin. */
export function logsPlugin(options: LogsPluginOptions): EventPlugin {
  const { settings, version, dataDir, ...rest } = options;
  return new EventPlugin({
    ...rest,
    manifest: logsManifest(version),
    builtin: true,
    keepOverLimit: keepLogEvent,
    config: {
      source: settings.source,
      files: settings.files,
      poll_ms: settings.poll_ms,
      max_line_bytes: settings.max_line_bytes,
      ...(dataDir ? { state_dir: path.resolve(dataDir) } : {}),
    },
  });
}
