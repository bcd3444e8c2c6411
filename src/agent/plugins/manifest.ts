/**
 * Plugin manifests: read, checked against the manifest schema, the executable resolved and its
 * SHA-256 compared before every start, and a plugin's configuration checked against the JSON
 * Schema the manifest carries. A plugin whose executable changed since it was installed is not
 * started: that is how a swapped binary shows up.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readRegularFile, type FileRefusal } from '../../runtime/regular-file.js';
import { createRequire } from 'node:module';
import path from 'node:path';
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

/** Reads and checks a manifest; throws HADES_ERR_PLUGIN_MANIFEST with every problem. */
export function loadManifest(file: string): LoadedManifest {
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

/** Throws HADES_ERR_PLUGIN_HASH_MISMATCH unless the executable is the one the manifest names. */
export function verifyExecutable(manifest: LoadedManifest): void {
  let actual: string;
  try {
    // A device or FIFO named as the executable would be read for ever (or block at open).
    const stats = statSync(manifest.binary);
    if (!stats.isFile() && !stats.isDirectory()) {
      throw new HadesError('HADES_ERR_PLUGIN_START', `plugin ${manifest.name}: ${manifest.binary} is not a regular file; not started`);
    }
    actual = sha256File(manifest.binary);
  } catch (error) {
    if (error instanceof HadesError) throw error;
    throw new HadesError('HADES_ERR_PLUGIN_START', `plugin ${manifest.name}: ${manifest.binary} cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (actual !== manifest.sha256) {
    throw new HadesError('HADES_ERR_PLUGIN_HASH_MISMATCH', `plugin ${manifest.name}: ${manifest.binary} has SHA-256 ${actual}, the manifest says ${manifest.sha256}; not started`, {
      details: { expected: manifest.sha256, actual },
    });
  }
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
