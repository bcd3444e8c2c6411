/**
 * Plugin manifests: read, checked against the manifest schema, the executable resolved and its
 * SHA-256 compared before every start, and a plugin's configuration checked against the JSON
 * Schema the manifest carries. A plugin whose executable changed since it was installed is not
 * started: that is how a swapped binary shows up.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { readRegularFile, type FileRefusal } from '../../runtime/regular-file.js';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import type { Ajv, Options as AjvOptions, ValidateFunction } from 'ajv';
import { HadesError } from '../../common/errors.js';
import { PluginManifestSchema, type PluginManifest } from '../../common/plugins/protocol.js';

const MAX_MANIFEST_BYTES = 256 * 1024;

export interface LoadedManifest extends PluginManifest {
  /** Where the manifest was read from. */
  readonly file: string;
  /** The executable's absolute path. */
  readonly binary: string;
}

/** The folder Hades runs from (bin/, dist/, driver/build/). */
const INSTALL_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * Who may own a plugin's files and folders: root, the agent's own user, and whoever owns the
 * folder Hades itself runs from (they can change the agent itself, so a plugin of theirs gives
 * them nothing more: a checkout made by another user and run as root works as it did); groups:
 * root's, and the install folder's when that folder is writable by its group.
 */
function trustedOwners(): { uids: ReadonlySet<number>; gids: ReadonlySet<number> } {
  const uids = new Set([0, process.geteuid?.() ?? 0]);
  const gids = new Set([0]);
  try {
    const install = statSync(INSTALL_ROOT);
    uids.add(install.uid);
    if ((install.mode & 0o020) !== 0) gids.add(install.gid);
  } catch {
    // not there (bundled elsewhere): root and the agent's user only
  }
  return { uids, gids };
}

/**
 * Why someone other than root (or the agent's own user) could change what `real` (a path without
 * symbolic links) names, or undefined: it and every folder above it must be owned by one of
 * them, and writable by no one else, by their group only when that group is root's. A folder
 * writable by everyone with the sticky bit (/tmp) is taken: others cannot rename or remove what
 * root owns in it, and what is in it is checked in turn.
 */
export function unsafePathReason(real: string): string | undefined {
  const { uids, gids } = trustedOwners();
  let current = '/';
  for (const part of ['', ...real.split('/').filter(Boolean)]) {
    current = part === '' ? '/' : path.posix.join(current, part);
    const stats = lstatSync(current);
    // Others' write permission means something only for folders and files (a device or FIFO named
    // here is refused by the caller as no regular file).
    if (!stats.isDirectory() && !stats.isFile()) continue;
    const sticky = stats.isDirectory() && (stats.mode & 0o1000) !== 0;
    if (!uids.has(stats.uid)) return `${current} is owned by user ${stats.uid}`;
    if ((stats.mode & 0o002) !== 0 && !sticky) return `${current} is writable by everyone`;
    if ((stats.mode & 0o020) !== 0 && !gids.has(stats.gid) && !sticky) return `${current} is writable by group ${stats.gid}`;
  }
  return undefined;
}

/** The real path of a plugin's file, once it is known that only root (or the agent's user) can change it. */
function safeRealPath(file: string, what: string): string {
  let real: string;
  let reason: string | undefined;
  try {
    real = realpathSync(file);
    reason = unsafePathReason(real);
  } catch {
    // Missing or unreadable: the caller's own read says so with its code.
    return file;
  }
  if (reason !== undefined) throw new HadesError('HADES_ERR_PLUGIN_UNSAFE_PATH', `${what} ${file}: ${reason}, so it could be changed by someone other than root; not started`, { details: { path: real, reason } });
  return real;
}

/** Reads and checks a manifest; throws HADES_ERR_PLUGIN_MANIFEST with every problem. */
export function loadManifest(file: string): LoadedManifest {
  // Who can write the manifest can name any executable and its hash.
  safeRealPath(file, 'plugin manifest');
  const text = readManifestText(file);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new HadesError('HADES_ERR_PLUGIN_MANIFEST', `plugin manifest ${file} is not JSON: ${(error as Error).message}`);
  }
  if (!Value.Check(PluginManifestSchema, raw)) {
    const problems = [...Value.Errors(PluginManifestSchema, raw)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new HadesError('HADES_ERR_PLUGIN_MANIFEST', `plugin manifest ${file} is not valid: ${problems.join('; ')}`, { details: { problems } });
  }
  if (raw.config_schema !== undefined) configValidator(raw, file);
  return { ...raw, file, binary: path.resolve(path.dirname(file), raw.executable) };
}

/** The manifest's text: a regular file of at most MAX_MANIFEST_BYTES (runtime/regular-file.ts). */
function readManifestText(file: string): string {
  const refuse = (why: FileRefusal): string => {
    switch (why.kind) {
      case 'unreadable':
        return `cannot be read: ${why.code}`;
      case 'folder':
        return 'cannot be read: EISDIR';
      case 'not_a_file':
        return 'is not a regular file';
      case 'too_large':
        return `is larger than ${MAX_MANIFEST_BYTES} bytes`;
    }
  };
  return readRegularFile(file, MAX_MANIFEST_BYTES, (why) => new HadesError('HADES_ERR_PLUGIN_MANIFEST', `plugin manifest ${file} ${refuse(why)}`));
}

/** SHA-256 of a file, read in chunks. */
export function sha256File(file: string): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Throws HADES_ERR_PLUGIN_HASH_MISMATCH unless the executable is the one the manifest names, and
 * HADES_ERR_PLUGIN_UNSAFE_PATH when someone other than root could swap it between this check and
 * its start; returns the real path to start (no symbolic link left to change in between).
 */
export function verifyExecutable(manifest: LoadedManifest): string {
  const binary = safeRealPath(manifest.binary, `plugin ${manifest.name}: executable`);
  let actual: string;
  try {
    // A device or FIFO named as the executable would be read for ever (or block at open).
    const stats = statSync(binary);
    if (!stats.isFile() && !stats.isDirectory()) {
      throw new HadesError('HADES_ERR_PLUGIN_START', `plugin ${manifest.name}: ${manifest.binary} is not a regular file; not started`);
    }
    actual = sha256File(binary);
  } catch (error) {
    if (error instanceof HadesError) throw error;
    throw new HadesError('HADES_ERR_PLUGIN_START', `plugin ${manifest.name}: ${manifest.binary} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (actual !== manifest.sha256) {
    throw new HadesError('HADES_ERR_PLUGIN_HASH_MISMATCH', `plugin ${manifest.name}: ${manifest.binary} has SHA-256 ${actual}, the manifest says ${manifest.sha256}; not started`, {
      details: { expected: manifest.sha256, actual },
    });
  }
  return binary;
}

/** Loaded on first use: most agents run no plugin with a config schema, and ajv costs memory. */
let ajv: Ajv | undefined;
function validatorCompiler(): Ajv {
  if (!ajv) {
    const { Ajv: AjvClass } = createRequire(import.meta.url)('ajv') as { Ajv: new (options: AjvOptions) => Ajv };
    ajv = new AjvClass({ allErrors: true, strict: false });
  }
  return ajv;
}
const validators = new WeakMap<object, ValidateFunction>();

function configValidator(manifest: PluginManifest, file: string): ValidateFunction | undefined {
  const schema = manifest.config_schema;
  if (!schema) return undefined;
  let validate = validators.get(schema);
  if (!validate) {
    try {
      validate = validatorCompiler().compile(schema);
    } catch (error) {
      throw new HadesError('HADES_ERR_PLUGIN_MANIFEST', `plugin manifest ${file}: config_schema is not a valid JSON Schema: ${(error as Error).message}`);
    }
    validators.set(schema, validate);
  }
  return validate;
}

/** Checks a plugin's configuration against its manifest; throws HADES_ERR_CONFIG_VALUE with every problem. */
export function checkPluginConfig(manifest: LoadedManifest, config: unknown): void {
  const validate = configValidator(manifest, manifest.file);
  if (!validate || validate(config)) return;
  const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
  throw new HadesError('HADES_ERR_CONFIG_VALUE', `configuration of plugin ${manifest.name} does not match its manifest's config_schema: ${problems.join('; ')}`, { details: { problems } });
}
