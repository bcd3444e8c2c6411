/**
 * Property-based fuzzing of the configuration loader (fast-check; test/helpers/fuzz.ts): the
 * bytes of a file (src/runtime/regular-file.ts configText), then the text (parseRoleConfig,
 * setsNothing, loadConfig in src/common/config). Any input, arbitrary or a mutation of a full
 * configuration (every default, alert outputs, honeypot decoys), gives a configuration or
 * problems with catalogued codes, never an exception, in bounded time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Value } from '@sinclair/typebox/value';
import { stringify } from 'yaml';
import { configError, configSchemas, loadConfig, parseRoleConfig, setsNothing, type ConfigRole } from '../../src/common/config/index.js';
import { configText } from '../../src/runtime/regular-file.js';
import { assertInputCode, codedOutcome, fuzzParams, mutatedBytes, mutatedText, mutatedTree, textLike, utf8, withDuplicatedLine, type Json } from '../helpers/fuzz.js';

/** A whole configuration of each role: every default, and the lists filled. */
const full: Record<ConfigRole, Json> = {
  agent: (() => {
    const config = Value.Default(configSchemas.agent, {}) as any;
    config.plugins.honeypot.ports = [
      { protocol: 'tcp', port: 2222, banner: 'SSH-2.0-OpenSSH_9.6' },
      { protocol: 'udp', port: 1900 },
    ];
    return config as Json;
  })(),
  server: (() => {
    const config = Value.Default(configSchemas.server, { data_dir: '/var/lib/hades/server' }) as any;
    config.alerts.outputs = [
      { name: 'chat', type: 'webhook', webhook: { url: 'https://chat.example.org/hooks/x' } },
      { name: 'siem', type: 'syslog', syslog: { host: 'siem.example.org' } },
      { name: 'archive', type: 'file', file: { path: '/var/log/hades/alerts.ndjson' } },
    ];
    return config as Json;
  })(),
};
const fullText: Record<ConfigRole, string> = { agent: stringify(full.agent), server: stringify(full.server) };

/** parseRoleConfig must return, in bounded time, a config or problems whose codes are catalogued. */
function checkConfig(text: string, role: ConfigRole): void {
  const outcome = codedOutcome(() => parseRoleConfig(text, role), 3000, `parseRoleConfig(${role})`);
  assert.ok('value' in outcome, 'parseRoleConfig reports problems, it does not throw');
  const result = outcome.value;
  if (result.ok) return;
  assert.ok(result.problems.length > 0);
  for (const p of result.problems) {
    assertInputCode(p.code, `problem at '${p.path}'`);
    assert.equal(typeof p.message, 'string');
  }
  // What `hades agent` and `hades config check` make of them.
  const error = configError(result.problems, 'agent.yaml');
  assert.equal(error.code, 'HADES_ERR_CONFIG_INVALID');
  codedOutcome(() => setsNothing(text), 3000, 'setsNothing');
}

const role = fc.constantFrom<ConfigRole>('agent', 'server');

describe('fuzz: configuration', () => {
  it('the full configurations of both roles are valid (the seeds of the mutations)', () => {
    for (const r of ['agent', 'server'] as const) {
      const result = parseRoleConfig(fullText[r], r);
      assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    }
  });

  it('arbitrary text: a configuration or coded problems', () => {
    fc.assert(
      fc.property(fc.oneof(textLike, fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })), role, (text, r) => checkConfig(text, r)),
      fuzzParams(300),
    );
  });

  it('arbitrary YAML values (any JSON shape written as YAML)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), role, (value, r) => checkConfig(stringify(value), r)),
      fuzzParams(200),
    );
  });

  it('tree mutations of a full configuration: keys removed, duplicated, of the wrong type, nested deep, huge, added', () => {
    fc.assert(
      fc.property(role.chain((r) => fc.tuple(fc.constant(r), mutatedTree(full[r], 3))), ([r, tree]) => checkConfig(stringify(tree, { aliasDuplicateObjects: false }), r)),
      fuzzParams(80),
    );
  });

  it('text mutations of a full configuration: byte flips, cuts, splices, repeated keys, raw bytes', () => {
    fc.assert(
      fc.property(
        role.chain((r) => fc.tuple(fc.constant(r), fc.oneof(mutatedText(fullText[r], 5), fc.nat().map((pick) => withDuplicatedLine(fullText[r], pick))))),
        ([r, text]) => checkConfig(text, r),
      ),
      fuzzParams(100),
    );
  });

  it('the bytes of a file: UTF-8 text, or HADES_ERR_CONFIG_INVALID with the position of the first byte that is not', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutatedBytes(utf8(fullText.agent), 5)), (bytes) => {
        const outcome = codedOutcome(() => configText(Buffer.from(bytes), 'agent.yaml'), 1000, 'configText');
        if ('error' in outcome) {
          assert.equal(outcome.error.code, 'HADES_ERR_CONFIG_INVALID');
          return;
        }
        checkConfig(outcome.value, 'agent');
      }),
      fuzzParams(150),
    );
  });

  it('loadConfig: a configuration or HADES_ERR_CONFIG_INVALID', () => {
    fc.assert(
      fc.property(fc.oneof(textLike, mutatedText(fullText.server, 3)), (text) => {
        const outcome = codedOutcome(() => loadConfig(text, configSchemas.server, 'server.yaml'), 3000, 'loadConfig');
        if ('error' in outcome) assert.equal(outcome.error.code, 'HADES_ERR_CONFIG_INVALID');
      }),
      fuzzParams(100),
    );
  });

  it('huge and deep documents are refused quickly', () => {
    const cases = ['['.repeat(100_000), '- '.repeat(50_000), `a: ${'&x [*x, *x] '.repeat(10)}`, `${'a:\n  '.repeat(300)}b: 1`, 'x: "' + 'y'.repeat(1_100_000) + '"', '{'.repeat(5000) + '}'.repeat(5000)];
    for (const text of cases) for (const r of ['agent', 'server'] as const) checkConfig(text, r);
  });

  it('regression: a line of block indicators without content is measured (it nested without bound and could end the process)', () => {
    // Found by the fuzzer: `- - - ...` (or one `-` per line, each indented further) has no
    // content token, so its depth went unmeasured; parsing then overflowed the stack, which in
    // Node 20 can happen inside V8's regular expression compiler and abort the process.
    const ladder = Array.from({ length: 400 }, (_, i) => `${' '.repeat(i)}-`).join('\n');
    for (const text of ['- '.repeat(50_000), '? '.repeat(5000), ladder]) {
      for (const r of ['agent', 'server'] as const) {
        const result = parseRoleConfig(text, r);
        assert.ok(!result.ok);
        assert.equal(result.problems[0]?.code, 'HADES_ERR_CONFIG_SYNTAX');
        assert.match(result.problems[0]?.message ?? '', /nests more than 256 levels/);
      }
    }
    const hundred = parseRoleConfig('- '.repeat(100), 'agent');
    assert.ok(!hundred.ok && hundred.problems[0]?.code === 'HADES_ERR_CONFIG_TYPE', 'a hundred levels are parsed (and refused as not a mapping)');
  });
});
