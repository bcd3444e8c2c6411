import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { checkPluginConfig, loadManifest, sha256File, unsafePathReason, verifyExecutable, type LoadedManifest } from '../../src/agent/plugins/manifest.js';
import { HadesError, type ErrorCode } from '../../src/common/errors.js';

const root = mkdtempSync(path.join(tmpdir(), 'hades-manifest-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const folder = (): string => {
  const dir = path.join(root, `m${++folders}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

const PLUGIN_TEXT = '#!/bin/sh\nexit 0\n';
const PLUGIN_SHA = createHash('sha256').update(PLUGIN_TEXT).digest('hex');

/** A folder with an executable `bin/plugin` and a manifest naming it relatively. */
function installed(fields: Record<string, unknown> = {}, text?: string): { dir: string; file: string } {
  const dir = folder();
  mkdirSync(path.join(dir, 'bin'));
  writeFileSync(path.join(dir, 'bin', 'plugin'), PLUGIN_TEXT, { mode: 0o755 });
  const file = path.join(dir, 'manifest.json');
  writeFileSync(file, text ?? JSON.stringify({ name: 'acme', version: '1.2.0', protocol: 1, executable: 'bin/plugin', sha256: PLUGIN_SHA, ...fields }));
  return { dir, file };
}

function coded(code: ErrorCode, pattern?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof HadesError, `expected a HadesError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe('plugin manifest: loadManifest', () => {
  it('loads a good manifest and resolves a relative executable against its folder', () => {
    const { dir, file } = installed({ args: ['--fast'], description: 'test', events: ['inventory_change'] });
    const m = loadManifest(file);
    assert.equal(m.name, 'acme');
    assert.equal(m.version, '1.2.0');
    assert.equal(m.protocol, 1);
    assert.equal(m.file, file);
    assert.equal(m.binary, path.join(dir, 'bin', 'plugin'));
    assert.deepEqual(m.args, ['--fast']);
    assert.deepEqual(m.events, ['inventory_change']);
    verifyExecutable(m);
  });

  it('keeps an absolute executable as it is', () => {
    const { dir } = installed();
    const other = folder();
    const file = path.join(other, 'manifest.json');
    const binary = path.join(dir, 'bin', 'plugin');
    writeFileSync(file, JSON.stringify({ name: 'acme', version: '1', protocol: 1, executable: binary, sha256: PLUGIN_SHA }));
    assert.equal(loadManifest(file).binary, binary);
  });

  it('refuses a missing manifest', () => {
    assert.throws(() => loadManifest(path.join(root, 'absent', 'manifest.json')), coded('HADES_ERR_PLUGIN_MANIFEST', /cannot be read: ENOENT/));
  });

  it('refuses a folder given as the manifest', () => {
    assert.throws(() => loadManifest(folder()), coded('HADES_ERR_PLUGIN_MANIFEST', /cannot be read: EISDIR/));
  });

  it('refuses a manifest that is not JSON', () => {
    const { file } = installed({}, '{ name: acme, ');
    assert.throws(() => loadManifest(file), coded('HADES_ERR_PLUGIN_MANIFEST', /is not JSON/));
  });

  it('refuses a manifest larger than 256 KiB', () => {
    const { file } = installed({}, `{"name":"acme","pad":"${'x'.repeat(300 * 1024)}"}`);
    assert.throws(() => loadManifest(file), coded('HADES_ERR_PLUGIN_MANIFEST', /larger than 262144 bytes/));
  });

  it(
    'refuses a manifest larger than 256 KiB of bytes even when it has fewer characters',

    () => {
      // 100 000 three-byte characters: about 300 KB on disk, 100 000 characters in memory.
      const { file } = installed({ config_schema: { type: 'object', description: '€'.repeat(100_000) } });
      assert.throws(() => loadManifest(file), coded('HADES_ERR_PLUGIN_MANIFEST', /larger than/));
    },
  );

  it('refuses a manifest that is no regular file (a device that never ends, a FIFO nobody writes) at once, without reading it', () => {
    const fifo = path.join(folder(), 'manifest.json');
    execFileSync('mkfifo', [fifo]);
    // In a process of its own: before the fix, /dev/zero was read until memory ran out, and
    // opening the FIFO blocked the agent's whole event loop for good.
    const module = new URL('../../src/agent/plugins/manifest.js', import.meta.url).href;
    const script = `const { loadManifest } = await import(${JSON.stringify(module)});
for (const file of ['/dev/zero', ${JSON.stringify(fifo)}]) {
  try { loadManifest(file); console.log('loaded'); } catch (e) { console.log(e.code + ' ' + e.message); }
}`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(run.signal, null, `loadManifest did not return within 10 s: ${run.stdout}${run.stderr}`);
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines.length, 2, run.stdout + run.stderr);
    assert.match(lines[0]!, /^HADES_ERR_PLUGIN_MANIFEST plugin manifest \/dev\/zero is not a regular file/);
    assert.match(lines[1]!, /^HADES_ERR_PLUGIN_MANIFEST plugin manifest .* is not a regular file/);
  });

  const schemaCases: [string, Record<string, unknown>, RegExp][] = [
    ['a bad name', { name: 'Acme Plugin' }, /\/name/],
    ['a name starting with a dash', { name: '-acme' }, /\/name/],
    ['a missing sha256', { sha256: undefined }, /sha256/],
    ['an upper-case sha256', { sha256: PLUGIN_SHA.toUpperCase() }, /\/sha256/],
    ['an unknown key', { exectuable: 'bin/plugin' }, /exectuable|additional/i],
    ['a protocol given as a string', { protocol: '1' }, /\/protocol/],
    ['protocol 0', { protocol: 0 }, /\/protocol/],
    ['an empty executable', { executable: '' }, /\/executable/],
    ['more than 64 args', { args: Array.from({ length: 65 }, (_, i) => `a${i}`) }, /\/args/],
    ['a config_schema that is not an object', { config_schema: 'yes' }, /\/config_schema/],
  ];
  for (const [what, fields, where] of schemaCases) {
    it(`refuses ${what} with the problem listed`, () => {
      const { file } = installed(fields);
      assert.throws(
        () => loadManifest(file),
        (error: unknown) => {
          coded('HADES_ERR_PLUGIN_MANIFEST', /is not valid: /)(error);
          const problems = (error as HadesError).details?.['problems'] as string[];
          assert.ok(Array.isArray(problems) && problems.length > 0);
          assert.ok(problems.some((p) => where.test(p)), `${problems.join('; ')} should name ${String(where)}`);
          return true;
        },
      );
    });
  }

  it('refuses a manifest that is JSON but not an object', () => {
    const { file } = installed({}, '[1, 2]');
    assert.throws(() => loadManifest(file), coded('HADES_ERR_PLUGIN_MANIFEST', /is not valid/));
  });

  it('refuses a config_schema that is not a valid JSON Schema', () => {
    const { file } = installed({ config_schema: { type: 12 } });
    assert.throws(() => loadManifest(file), coded('HADES_ERR_PLUGIN_MANIFEST', /config_schema is not a valid JSON Schema/));
  });
});

describe('plugin manifest: checkPluginConfig', () => {
  const schema = {
    type: 'object',
    properties: { interval_s: { type: 'integer', minimum: 1 }, mode: { enum: ['fast', 'slow'] } },
    required: ['interval_s'],
    additionalProperties: false,
  };

  it('accepts a configuration matching config_schema', () => {
    const m = loadManifest(installed({ config_schema: schema }).file);
    checkPluginConfig(m, { interval_s: 60, mode: 'fast' });
  });

  it('accepts any configuration when the manifest has no config_schema', () => {
    const m = loadManifest(installed().file);
    checkPluginConfig(m, { anything: [1, 2, 3] });
    checkPluginConfig(m, undefined);
  });

  it('refuses a configuration that does not match, with every problem in the message', () => {
    const m = loadManifest(installed({ config_schema: schema }).file);
    assert.throws(
      () => checkPluginConfig(m, { interval_s: 0, mode: 'turbo', colour: 'red' }),
      (error: unknown) => {
        coded('HADES_ERR_CONFIG_VALUE', /configuration of plugin acme does not match/)(error);
        const message = (error as HadesError).message;
        assert.match(message, /\/interval_s must be >= 1/);
        assert.match(message, /\/mode must be equal to one of the allowed values/);
        assert.match(message, /must NOT have additional properties/);
        const problems = (error as HadesError).details?.['problems'] as string[];
        assert.equal(problems.length, 3);
        return true;
      },
    );
  });

  it('refuses a configuration missing a required key', () => {
    const m = loadManifest(installed({ config_schema: schema }).file);
    assert.throws(() => checkPluginConfig(m, {}), coded('HADES_ERR_CONFIG_VALUE', /must have required property 'interval_s'/));
  });
});

describe('plugin manifest: verifyExecutable and sha256File', () => {
  it('computes the SHA-256 of a file, also across read chunks', () => {
    const dir = folder();
    const big = Buffer.alloc((1 << 20) * 2 + 123, 7);
    writeFileSync(path.join(dir, 'big'), big);
    assert.equal(sha256File(path.join(dir, 'big')), createHash('sha256').update(big).digest('hex'));
    writeFileSync(path.join(dir, 'empty'), '');
    assert.equal(sha256File(path.join(dir, 'empty')), createHash('sha256').digest('hex'));
  });

  it('refuses an executable whose hash differs, with expected and actual', () => {
    const { dir, file } = installed();
    const m = loadManifest(file);
    writeFileSync(path.join(dir, 'bin', 'plugin'), `${PLUGIN_TEXT}# swapped\n`);
    const actual = sha256File(m.binary);
    assert.throws(
      () => verifyExecutable(m),
      (error: unknown) => {
        coded('HADES_ERR_PLUGIN_HASH_MISMATCH', /not started/)(error);
        assert.deepEqual((error as HadesError).details, { expected: PLUGIN_SHA, actual });
        return true;
      },
    );
  });

  it('refuses a missing executable with HADES_ERR_PLUGIN_START', () => {
    const { dir, file } = installed();
    const m = loadManifest(file);
    rmSync(path.join(dir, 'bin', 'plugin'));
    assert.throws(() => verifyExecutable(m), coded('HADES_ERR_PLUGIN_START', /cannot be read: ENOENT/));
  });

  it('refuses an executable that is no regular file (a device that never ends) with HADES_ERR_PLUGIN_START, without reading it', () => {
    const { file } = installed();
    const module = new URL('../../src/agent/plugins/manifest.js', import.meta.url).href;
    // In a process of its own: before the fix, /dev/zero was hashed for ever.
    const script = `const { loadManifest, verifyExecutable } = await import(${JSON.stringify(module)});
try { verifyExecutable({ ...loadManifest(${JSON.stringify(file)}), binary: '/dev/zero' }); console.log('verified'); } catch (e) { console.log(e.code + ' ' + e.message); }`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(run.signal, null, `verifyExecutable did not return within 10 s: ${run.stdout}${run.stderr}`);
    assert.match(run.stdout.trim(), /^HADES_ERR_PLUGIN_START plugin acme: \/dev\/zero is not a regular file/);
  });

  it('refuses an executable or manifest that someone other than root could change, and gives the real path of one that is safe', () => {
    // Another user's file, or a folder above it that others may write: they could swap the
    // executable between its check and its start (it runs as root), or name another in the manifest.
    let { dir, file } = installed();
    chmodSync(path.join(dir, 'bin'), 0o777);
    assert.throws(() => verifyExecutable(loadManifest(file)), coded('HADES_ERR_PLUGIN_UNSAFE_PATH', /bin is writable by everyone, so it could be changed by someone other than root; not started/));
    chmodSync(path.join(dir, 'bin'), 0o775);
    chownSync(path.join(dir, 'bin'), 0, 1234);
    assert.throws(() => verifyExecutable(loadManifest(file)), coded('HADES_ERR_PLUGIN_UNSAFE_PATH', /writable by group 1234/));
    // Group-writable by root's own group, and the sticky /tmp above: only root can change them.
    chownSync(path.join(dir, 'bin'), 0, 0);
    assert.ok(verifyExecutable(loadManifest(file)).endsWith('/bin/plugin'));
    chownSync(path.join(dir, 'bin', 'plugin'), 1234, 1234);
    assert.throws(() => verifyExecutable(loadManifest(file)), coded('HADES_ERR_PLUGIN_UNSAFE_PATH', /plugin is owned by user 1234/));
    ({ dir, file } = installed());
    chownSync(file, 1234, 0);
    assert.throws(() => loadManifest(file), coded('HADES_ERR_PLUGIN_UNSAFE_PATH', /^plugin manifest .* is owned by user 1234/));
    // Reached through a symbolic link: the file it leads to is checked, and that path is the one started.
    ({ dir, file } = installed());
    const shared = folder();
    chmodSync(shared, 0o1777);
    symlinkSync(path.join(dir, 'bin', 'plugin'), path.join(shared, 'link'));
    const m = { ...loadManifest(file), binary: path.join(shared, 'link') };
    assert.equal(verifyExecutable(m), path.join(dir, 'bin', 'plugin'));
    chmodSync(path.join(dir, 'bin'), 0o757);
    assert.throws(() => verifyExecutable(m), coded('HADES_ERR_PLUGIN_UNSAFE_PATH', new RegExp(`${path.join(dir, 'bin')} is writable by everyone`)));
    assert.equal(unsafePathReason('/'), undefined);
  });

  it('refuses an executable that is a folder with HADES_ERR_PLUGIN_START', () => {
    const { file } = installed();
    const m: LoadedManifest = { ...loadManifest(file), binary: folder() };
    assert.throws(() => verifyExecutable(m), coded('HADES_ERR_PLUGIN_START', /cannot be read: EISDIR/));
  });
});
