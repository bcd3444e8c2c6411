/**
 * The agent's side of the honeypot mode (src/agent/honeypot/decoys.ts): a supervised plugin
 * process run by the agent's own Node binary, like the log collector, so that what strangers
 * send to the decoys is handled outside the agent, under a budget.
 */
import { fileURLToPath } from 'node:url';
import type { AgentConfig } from '../../common/config/index.js';
import { HONEYPOT_PLUGIN } from '../honeypot/decoys.js';
import { EventPlugin, type EventPluginOptions } from './event-plugin.js';
import { LOGS_NODE_FLAGS } from './logs-plugin.js';
import type { LoadedManifest } from './manifest.js';

export { HONEYPOT_PLUGIN };

export const honeypotMain = (): string => fileURLToPath(new URL('../honeypot/honeypot-main.js', import.meta.url));

export function honeypotManifest(version: string): LoadedManifest {
  return {
    name: HONEYPOT_PLUGIN,
    version,
    protocol: 1,
    executable: process.execPath,
    // The same small heap as the log collector: it holds a few connections' first bytes.
    args: [...LOGS_NODE_FLAGS, honeypotMain(), version],
    // Not checked for a built-in (EventPlugin's `builtin`): there is no file to pin.
    sha256: '0'.repeat(64),
    description: 'Built-in honeypot mode: decoy TCP ports, every connection reported.',
    events: ['honeypot_touch'],
    file: '(built-in)',
    binary: process.execPath,
  };
}

export type HoneypotPluginOptions = Omit<EventPluginOptions, 'manifest' | 'config' | 'builtin' | 'onFrame' | 'onExit' | 'keepOverLimit'> & {
  readonly settings: AgentConfig['plugins']['honeypot'];
  readonly version: string;
};

/** The built-in honeypot as an event plugin. */
export function honeypotPlugin(options: HoneypotPluginOptions): EventPlugin {
  const { settings, version, ...rest } = options;
  return new EventPlugin({
    ...rest,
    manifest: honeypotManifest(version),
    builtin: true,
    config: {
      ports: settings.ports,
      bind: settings.bind,
      max_bytes: settings.max_bytes,
      idle_ms: settings.idle_ms,
      max_connections: settings.max_connections,
    },
  });
}
