/**
 * Every error Hades reports carries a stable code from this catalogue.
 *
 * Kinds are kept apart because they call for different responses:
 * - `input`: the user gave us something wrong (a command, a config file, a rule, a request);
 *   the message says what and where, and retrying without a change will fail again.
 * - `environment`: the host or a dependency is not as needed (missing privilege, a file
 *   that cannot be read, a kernel feature that is absent); fixing the machine fixes it.
 * - `bug`: Hades broke an invariant of its own; report it.
 *
 * docs/errors.md is generated from this table and a test fails when they disagree, so a code
 * cannot ship undocumented.
 */

export type ErrorKind = 'input' | 'environment' | 'bug';

export interface ErrorSpec {
  readonly kind: ErrorKind;
  /** One sentence: what happened. */
  readonly summary: string;
  /** One sentence: what the person seeing it should do. */
  readonly remedy: string;
}

export const errorCatalog = {
  // Command line
  HADES_ERR_CLI_UNKNOWN_COMMAND: {
    kind: 'input',
    summary: 'The command or subcommand is not one hades knows.',
    remedy: 'Run `hades --help` (or `hades COMMAND --help`) for the list; the message suggests the closest name.',
  },
  HADES_ERR_CLI_UNKNOWN_OPTION: {
    kind: 'input',
    summary: 'A flag was given that the command does not take.',
    remedy: 'Check the spelling against `hades COMMAND --help`.',
  },
  HADES_ERR_CLI_MISSING_ARGUMENT: {
    kind: 'input',
    summary: 'A required argument or an option value is missing.',
    remedy: 'See `hades COMMAND --help` for the expected arguments.',
  },
  HADES_ERR_CLI_TOO_MANY_ARGUMENTS: {
    kind: 'input',
    summary: 'More positional arguments were given than the command takes.',
    remedy: 'Quote arguments that contain spaces; see `hades COMMAND --help`.',
  },
  HADES_ERR_CLI_INVALID_ARGUMENT: {
    kind: 'input',
    summary: 'An argument or option value is not one the command accepts.',
    remedy: 'The message lists the accepted values.',
  },
  HADES_ERR_NOT_YET_AVAILABLE: {
    kind: 'input',
    summary: 'The command is planned but not yet available in this version of Hades.',
    remedy: 'Use a later version; `hades --help` marks every command that is not yet available.',
  },
  // Configuration
  HADES_ERR_CONFIG_READ: {
    kind: 'environment',
    summary: 'The configuration file could not be read.',
    remedy: 'Check that the path exists and is readable by the user running hades.',
  },
  HADES_ERR_CONFIG_NOT_A_FILE: {
    kind: 'input',
    summary: 'The configuration path names a folder or a device, not a file.',
    remedy: 'Give the path of the YAML file itself.',
  },
  HADES_ERR_CONFIG_TOO_LARGE: {
    kind: 'input',
    summary: 'The configuration file is larger than the 1 MiB a configuration may be.',
    remedy: 'Point hades at the configuration file itself, not at a data file.',
  },
  HADES_ERR_CONFIG_SYNTAX: {
    kind: 'input',
    summary: 'The configuration file is not valid YAML (the message gives the line and column).',
    remedy: 'Fix the YAML at the position shown; duplicate keys count as syntax errors.',
  },
  HADES_ERR_CONFIG_UNKNOWN_KEY: {
    kind: 'input',
    summary: 'The configuration has a key the schema does not define (often a misspelling).',
    remedy: 'Remove the key or use the suggested name; `hades config schema` lists every key.',
  },
  HADES_ERR_CONFIG_TYPE: {
    kind: 'input',
    summary: 'A configuration value has the wrong type (the message gives the line and column).',
    remedy: 'Use the type the schema gives for the key; `hades config schema` shows it.',
  },
  HADES_ERR_CONFIG_VALUE: {
    kind: 'input',
    summary: 'A configuration value has the right type but is outside what the key allows.',
    remedy: 'Use one of the allowed values or a number within the stated range.',
  },
  HADES_ERR_CONFIG_MISSING_KEY: {
    kind: 'input',
    summary: 'A key the configuration requires is absent.',
    remedy: 'Add the key; `hades config defaults` prints a complete configuration.',
  },
  HADES_ERR_CONFIG_INVALID: {
    kind: 'input',
    summary: 'The configuration has one or more problems, each listed with its own code.',
    remedy: 'Fix every listed problem; nothing is started with an invalid configuration.',
  },
  // Events
  HADES_ERR_EVENT_UNKNOWN_ACTION: {
    kind: 'input',
    summary: 'An event has an `event.action` that the event schema does not define.',
    remedy: 'See docs/events.md for the actions Hades knows.',
  },
  HADES_ERR_EVENT_INVALID: {
    kind: 'input',
    summary: 'An event does not match the schema of its action.',
    remedy: 'The message lists each field that is missing, mistyped or unknown; see docs/events.md.',
  },
  // Plugin and driver streams
  HADES_ERR_FRAME_TOO_LARGE: {
    kind: 'input',
    summary: 'A frame on a plugin pipe announced a payload larger than the 1 MiB limit; the stream is treated as corrupt.',
    remedy: 'The plugin is stopped and restarted; if it repeats, the plugin is broken or not a Hades plugin.',
  },
  HADES_ERR_FRAME_MALFORMED: {
    kind: 'input',
    summary: 'A frame or record from a plugin or the driver could not be decoded (bad length, unknown version, bad JSON).',
    remedy: 'The record is counted and skipped; if it repeats, check that the driver and the agent come from the same version.',
  },
  HADES_ERR_DRIVER_NOT_FOUND: {
    kind: 'environment',
    summary: 'The kernel driver binary is missing or not executable.',
    remedy: 'Build it with `make -C driver` (the bootstrap of `npm start` does).',
  },
  HADES_ERR_DRIVER_FAILED: {
    kind: 'environment',
    summary: 'The kernel driver could not start or could not load any event source (eBPF or cn_proc).',
    remedy: 'Run as root; the message carries the driver\'s own reason (for example missing BPF support or CAP_NET_ADMIN).',
  },
  HADES_ERR_DRIVER_PROTOCOL: {
    kind: 'environment',
    summary: 'The driver speaks a protocol version this agent does not understand.',
    remedy: 'Rebuild the driver from the same source as the agent.',
  },
  // Bootstrap (scripts/bootstrap.mjs)
  HADES_ERR_BOOTSTRAP_NOT_ROOT: {
    kind: 'environment',
    summary: 'The bootstrap must install system packages and is not running as root.',
    remedy: 'Run the command as root, or install the packages the message lists and run it again.',
  },
  HADES_ERR_BOOTSTRAP_NODE_VERSION: {
    kind: 'environment',
    summary: 'The Node.js version is older than Hades supports.',
    remedy: 'Install Node.js 20.19 or later.',
  },
  HADES_ERR_BOOTSTRAP_STEP_FAILED: {
    kind: 'environment',
    summary: 'A bootstrap step (apt-get, npm ci, a native or TypeScript build) failed.',
    remedy: 'The output above the message shows the failing command; fix its cause and run again.',
  },
  // Invariants
  HADES_ERR_INTERNAL: {
    kind: 'bug',
    summary: 'Hades reached a state its code holds to be impossible.',
    remedy: 'Report it with the message and the command that led to it.',
  },
} as const satisfies Record<`HADES_ERR_${string}`, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalog;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalog, code);
}

export interface HadesErrorOptions {
  readonly cause?: unknown;
  /** Structured context (a path, a position, a list of problems) for programs and logs. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export class HadesError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: HadesErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HadesError';
    this.code = code;
    this.kind = errorCatalog[code].kind;
    this.details = options.details;
  }

  /** The one-line form used by the CLI and in logs: `CODE: message`. */
  toLine(): string {
    return `${this.code}: ${this.message.replace(/\s*\n\s*/g, '; ')}`;
  }
}

export function isHadesError(value: unknown): value is HadesError {
  return value instanceof HadesError;
}

/** Wraps anything thrown into a HadesError; foreign errors are bugs until proven otherwise. */
export function toHadesError(value: unknown): HadesError {
  if (value instanceof HadesError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new HadesError('HADES_ERR_INTERNAL', message, { cause: value });
}
