import { readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { ErrorKind } from '../common/errors.js';

/** Where a command writes; tests and the real process pass different streams. */
export interface CliContext {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Aborted on SIGINT/SIGTERM: long-running commands stop cleanly when it fires. */
  readonly signal: AbortSignal;
}

/** Exit statuses by error kind, documented in docs/errors.md. */
export const exitStatus: Readonly<Record<ErrorKind | 'ok', number>> = { ok: 0, input: 2, environment: 3, bug: 70 };

interface PackageJson {
  readonly version: string;
}

/** The package version, read from package.json (dist/src/cli -> package root). */
export const version: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as PackageJson).version;

/** Where each program looks for its configuration when --config is not given. */
export const defaultConfigFiles: Readonly<Record<'agent' | 'server', string>> = { agent: '/etc/hades/agent.yaml', server: '/etc/hades/server.yaml' };
