import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AgentConfigSchema, ServerConfigSchema, isIpAddress, loadConfig, parseConfig, parseRoleConfig, setsNothing, MAX_CONFIG_BYTES, type ConfigProblem } from '../../src/common/config/index.js';
import { HadesError } from '../../src/common/errors.js';
import { yamlDepthProblem } from '../../src/common/yaml-depth.js';
import { readConfigText } from '../../src/runtime/regular-file.js';

function problems(text: string, schema: typeof AgentConfigSchema | typeof ServerConfigSchema = AgentConfigSchema): readonly ConfigProblem[] {
  const result = parseConfig(text, schema);
  assert.equal(result.ok, false, 'expected the configuration to be rejected');
  return result.ok ? [] : result.problems;
}

describe('configuration', () => {
  it('fills every default into an empty file and freezes the result', () => {
    const result = parseConfig('', AgentConfigSchema);
    assert.ok(result.ok);
    assert.equal(result.config.driver.backend, 'auto');
    assert.equal(result.config.driver.argv_max, 4096);
    assert.equal(result.config.log.level, 'info');
    assert.ok(Object.isFrozen(result.config) && Object.isFrozen(result.config.driver));
    assert.throws(() => {
      (result.config.driver as { argv_max: number }).argv_max = 1;
    }, TypeError);
  });

  it('keeps given values and defaults the rest of a section', () => {
    const result = parseConfig('driver:\n  backend: cnproc\n', AgentConfigSchema);
    assert.ok(result.ok);
    assert.equal(result.config.driver.backend, 'cnproc');
    assert.equal(result.config.driver.ringbuf_mb, 4);
    assert.equal(result.config.driver.batch_ms, 50);
  });

  it('rejects a misspelt key with its path, position and the intended key', () => {
    const [p] = problems('driver:\n  argv_max: 8192\n  ringbuf_mbb: 4\n');
    assert.equal(p?.code, 'HADES_ERR_CONFIG_UNKNOWN_KEY');
    assert.equal(p?.path, 'driver.ringbuf_mbb');
    assert.equal(p?.line, 3);
    assert.equal(p?.column, 3);
    assert.equal(p?.suggestion, 'ringbuf_mb');
    assert.match(p?.message ?? '', /did you mean 'driver.ringbuf_mb'/);
  });

  it('lists the known keys when nothing is close', () => {
    const [p] = problems('telemetry: true\n');
    assert.equal(p?.code, 'HADES_ERR_CONFIG_UNKNOWN_KEY');
    assert.equal(p?.suggestion, undefined);
    assert.match(p?.message ?? '', /known keys here: agent, plugins, outputs, spool, metrics, driver, privilege, protect, limits, process_tree, hashing, log/);
  });

  it('reports a wrong type with line and column', () => {
    const [p] = problems('log:\n  max_files: many\n');
    assert.equal(p?.code, 'HADES_ERR_CONFIG_TYPE');
    assert.equal(p?.path, 'log.max_files');
    assert.deepEqual([p?.line, p?.column], [2, 14]);
    assert.match(p?.message ?? '', /must be an integer \(got a string "many"\)/);
  });

  it('reports values out of range and words not allowed as value problems', () => {
    const found = problems('driver:\n  argv_max: 100\n  backend: kprobe\n');
    assert.deepEqual(found.map((p) => [p.code, p.path, p.line]), [
      ['HADES_ERR_CONFIG_VALUE', 'driver.backend', 3],
      ['HADES_ERR_CONFIG_VALUE', 'driver.argv_max', 2],
    ].sort((a, b) => (found.findIndex((p) => p.path === a[1]) - found.findIndex((p) => p.path === b[1]))));
    assert.match(found.find((p) => p.path === 'driver.backend')?.message ?? '', /one of "auto", "ebpf", "cnproc"/);
  });

  it('checks file watch rules as the driver will: one whole * component, a short suffix', () => {
    const found = problems('driver:\n  file_watch: ["/a/*/*/b/", "/x/*", "relative/", "/home/*/.ssh/", "/etc/"]\n');
    assert.deepEqual(found.map((p) => p.path), ['driver.file_watch.0', 'driver.file_watch.1', 'driver.file_watch.2']);
    assert.ok(found.every((p) => p.code === 'HADES_ERR_CONFIG_VALUE' && /one component may be \*/.test(p.message)));
  });

  it('refuses quiet file watch prefixes that are relative or hold a *', () => {
    const found = problems('driver:\n  file_watch_quiet: ["/var/log/", "var/log/", "/home/*/logs/"]\n');
    assert.deepEqual(found.map((p) => [p.code, p.path]), [
      ['HADES_ERR_CONFIG_VALUE', 'driver.file_watch_quiet.1'],
      ['HADES_ERR_CONFIG_VALUE', 'driver.file_watch_quiet.2'],
    ]);
    assert.match(found[0]?.message ?? '', /without \*/);
  });

  it('refuses sensitive file patterns that are relative or empty, and a rescan period under 5 s', () => {
    const found = problems('driver:\n  sensitive_files: ["/etc/shadow", "!/home/*/.ssh/id_*.pub", "etc/shadow", "!etc/x", "/"]\n  sensitive_files_rescan_s: 1\n');
    assert.deepEqual(found.map((p) => [p.code, p.path]), [
      ['HADES_ERR_CONFIG_VALUE', 'driver.sensitive_files.2'],
      ['HADES_ERR_CONFIG_VALUE', 'driver.sensitive_files.3'],
      ['HADES_ERR_CONFIG_VALUE', 'driver.sensitive_files.4'],
      ['HADES_ERR_CONFIG_VALUE', 'driver.sensitive_files_rescan_s'],
    ]);
    assert.match(found[0]?.message ?? '', /absolute path/);
  });

  it('refuses a honeypot decoy named twice, and a banner on a UDP decoy, with their lines', () => {
    const text = 'plugins:\n  honeypot:\n    ports:\n      - { port: 2323 }\n      - { port: 2323 }\n      - { port: 2323, protocol: udp }\n      - { port: 1161, protocol: udp, banner: "hi" }\n';
    const result = parseRoleConfig(text, 'agent');
    assert.equal(result.ok, false);
    const found = result.ok ? [] : result.problems;
    assert.deepEqual(found.map((p) => [p.code, p.path, p.line]), [
      ['HADES_ERR_CONFIG_VALUE', 'plugins.honeypot.ports.1.port', 5],
      ['HADES_ERR_CONFIG_VALUE', 'plugins.honeypot.ports.3.banner', 7],
    ]);
    assert.match(found[1]?.message ?? '', /never answers/);
    assert.equal(parseRoleConfig('plugins:\n  honeypot:\n    ports: [{ port: 2323 }, { port: 2323, protocol: udp }]\n', 'agent').ok, true, 'the same port in each protocol');
  });

  it('reports the schema\'s problems and the checks of the sections that passed it in one run', () => {
    // An unknown key in one section does not hold back a duplicate decoy in another, nor one in
    // the honeypot's own section beside the decoys.
    const text = 'driver:\n  ringbuf_mbb: 4\nplugins:\n  honeypot:\n    enable: true\n    ports:\n      - { port: 2323 }\n      - { port: 2323 }\noutputs:\n  server: { api: "https://[::" }\n';
    const result = parseRoleConfig(text, 'agent');
    assert.deepEqual(result.ok ? [] : result.problems.map((p) => [p.code, p.path, p.line, p.column]), [
      ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'driver.ringbuf_mbb', 2, 3],
      ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'plugins.honeypot.enable', 5, 5],
      ['HADES_ERR_CONFIG_VALUE', 'plugins.honeypot.ports.1.port', 8, 17],
      ['HADES_ERR_CONFIG_VALUE', 'outputs.server.api', 10, 18],
    ]);
    // The server's: an unknown key and an alert output named twice.
    const server = parseRoleConfig('listen: { apii: "127.0.0.1:8443" }\nalerts:\n  outputs:\n    - { name: a, type: file, file: { path: /tmp/a.ndjson } }\n    - { name: a, type: file, file: { path: /tmp/b.ndjson } }\n', 'server');
    assert.deepEqual(server.ok ? [] : server.problems.map((p) => [p.code, p.path, p.line]), [
      ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'listen.apii', 1],
      ['HADES_ERR_ALERT_OUTPUT_CONFIG', 'alerts.outputs.1.name', 5],
    ]);
  });

  it('does not check again a key that failed its schema, nor what holds it or what it holds (one problem per mistake)', () => {
    const codes = (text: string) => {
      const result = parseRoleConfig(text, 'agent');
      return result.ok ? [] : result.problems.map((p) => [p.code, p.path]);
    };
    // A decoy the schema refuses: the list is not checked for duplicates.
    assert.deepEqual(codes('plugins:\n  honeypot:\n    ports: [{ port: 0 }, { port: 0 }]\n'), [
      ['HADES_ERR_CONFIG_VALUE', 'plugins.honeypot.ports.0.port'],
      ['HADES_ERR_CONFIG_VALUE', 'plugins.honeypot.ports.1.port'],
    ]);
    // A section of the wrong type: nothing read under it is checked (nor crashes the checks).
    assert.deepEqual(codes('plugins: 5\ndriver: { ringbuf_mb: 256 }\n'), [['HADES_ERR_CONFIG_TYPE', 'plugins']]);
    assert.deepEqual(codes('outputs: { server: [] }\n'), [['HADES_ERR_CONFIG_TYPE', 'outputs.server']]);
    // A list where a mapping belongs: said as such, once, not as unknown keys 0, 1... (nor taken
    // for the defaults when empty).
    assert.deepEqual(codes('driver: []\noutputs: { server: [{ enabled: true }, 2] }\n'), [
      ['HADES_ERR_CONFIG_TYPE', 'driver'],
      ['HADES_ERR_CONFIG_TYPE', 'outputs.server'],
    ]);
    const list = parseRoleConfig('driver: []\n', 'agent');
    assert.equal(list.ok ? '' : list.problems[0]?.message, "'driver' must be a mapping (got a list)");
    // The shape and NUL problems come with the schema's and the checks', not in a round before.
    assert.deepEqual(codes('driver: { file_watch: { etc: /etc/ }, argv_maxx: 1 }\noutputs: { file: { path: "/a\\0" } }\nplugins: { honeypot: { ports: [{ port: 9 }, { port: 9 }] } }\n'), [
      ['HADES_ERR_CONFIG_TYPE', 'driver.file_watch'],
      ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'driver.argv_maxx'],
      ['HADES_ERR_CONFIG_VALUE', 'outputs.file.path'],
      ['HADES_ERR_CONFIG_VALUE', 'plugins.honeypot.ports.1.port'],
    ]);
    // One of the keys a check reads failed: the check waits (the ring buffer against the budget).
    assert.deepEqual(codes('driver: { ringbuf_mb: 256 }\nplugins: { limits: { memory_mb: "lots" } }\n'), [['HADES_ERR_CONFIG_TYPE', 'plugins.limits.memory_mb']]);
    // ...and runs when another key of the same section failed.
    assert.deepEqual(codes('driver: { ringbuf_mb: 256 }\nplugins: { limits: { memory_mbb: 9 } }\n'), [
      ['HADES_ERR_CONFIG_VALUE', 'driver.ringbuf_mb'],
      ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'plugins.limits.memory_mbb'],
    ]);
  });

  it('refuses a ring buffer the driver\'s memory budget cannot hold (it counts twice in the driver\'s memory), with its line', () => {
    const result = parseRoleConfig('driver:\n  ringbuf_mb: 100\n', 'agent');
    assert.equal(result.ok, false);
    const [p] = result.ok ? [] : result.problems;
    assert.deepEqual([p?.code, p?.path, p?.line], ['HADES_ERR_CONFIG_VALUE', 'driver.ringbuf_mb', 2]);
    assert.match(p?.message ?? '', /128 MiB counts twice .* about 288 MB, over its memory budget of 200 MB/);
    assert.equal(parseRoleConfig('driver:\n  ringbuf_mb: 100\nplugins:\n  limits: { memory_mb: 300 }\n', 'agent').ok, true, 'with a budget that holds it');
    assert.equal(parseRoleConfig('driver:\n  ringbuf_mb: 100\nplugins:\n  driver: false\n', 'agent').ok, true, 'without the driver');
    assert.equal(parseRoleConfig('driver:\n  ringbuf_mb: 64\n', 'agent').ok, true, 'the largest that the default budget holds');
  });

  it('lists problems in the order of the file', () => {
    const found = problems('log:\n  level: loud\ndriver:\n  backnd: x\n');
    assert.deepEqual(found.map((p) => p.line), [2, 4]);
  });

  it('reports every problem, not only the first', () => {
    assert.equal(problems('driver:\n  backnd: x\nlog:\n  level: loud\nhashing: yes\n').length, 3);
  });

  it('refuses a filter that names an executable or a cgroup by anything but an absolute path (it would never match)', () => {
    const found = problems('driver:\n  deny_executables: [sleep]\n  deny_cgroups: [system.slice]\n  allow_cgroups: [./app]\n');
    assert.deepEqual(found.map((p) => p.path), ['driver.deny_executables.0', 'driver.deny_cgroups.0', 'driver.allow_cgroups.0']);
    assert.ok(found.every((p) => p.code === 'HADES_ERR_CONFIG_VALUE' && /absolute path/.test(p.message)), JSON.stringify(found));
  });

  it('points into lists', () => {
    const [p] = problems('driver:\n  deny_executables:\n    - /usr/bin/ok\n    - 42\n');
    assert.equal(p?.path, 'driver.deny_executables.1');
    assert.equal(p?.line, 4);
  });

  it('reports YAML syntax errors and duplicate keys with their position', () => {
    const [syntax] = problems('driver:\n  backend: [ebpf\n');
    assert.equal(syntax?.code, 'HADES_ERR_CONFIG_SYNTAX');
    assert.ok((syntax?.line ?? 0) >= 2);
    const [dup] = problems('log:\n  level: info\n  level: warn\n');
    assert.equal(dup?.code, 'HADES_ERR_CONFIG_SYNTAX');
    assert.equal(dup?.line, 3);
  });

  it('rejects a document that is not a mapping', () => {
    const [p] = problems('- a\n- b\n');
    assert.equal(p?.code, 'HADES_ERR_CONFIG_TYPE');
    assert.match(p?.message ?? '', /the configuration must be a mapping/);
  });

  it('refuses files over the size limit without parsing them', () => {
    const [p] = problems(`# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    assert.equal(p?.code, 'HADES_ERR_CONFIG_TOO_LARGE');
  });

  it('survives hostile YAML (alias bombs) with an error', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 8; i++) bomb.push(`${'bcdefghi'[i]}: &${'bcdefghi'[i]} [*${i === 0 ? 'a' : 'bcdefghi'[i - 1]},*${i === 0 ? 'a' : 'bcdefghi'[i - 1]},*${i === 0 ? 'a' : 'bcdefghi'[i - 1]},*${i === 0 ? 'a' : 'bcdefghi'[i - 1]}]`);
    const result = parseConfig(bomb.join('\n'), AgentConfigSchema);
    assert.equal(result.ok, false);
    // An alias inside the node its anchor names: a value that contains itself, refused (every walk of it overflowed the stack).
    for (const text of ['x_loop: &a [*a]\n', 'log: &l {level: info, again: *l}\n', 'a: &a\n  - b: [1, *a]\n']) {
      const [p] = problems(text);
      assert.equal(p?.code, 'HADES_ERR_CONFIG_SYNTAX', text);
      assert.match(p?.message ?? '', /would contain itself/);
      assert.equal(setsNothing(text), false);
    }
    // Shared, not cyclic: allowed.
    assert.equal(parseConfig('outputs: &o {}\nlog: {level: info}\n', AgentConfigSchema).ok, true);
  });

  it('refuses YAML nested too deep to parse safely before parsing it, and passes what real files nest', () => {
    for (const text of [`log: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`, `${'- '.repeat(5000)}y\n`, `a:\n${Array.from({ length: 300 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')}\n`]) {
      const [p] = problems(text);
      assert.equal(p?.code, 'HADES_ERR_CONFIG_SYNTAX');
      assert.match(p?.message ?? '', /nests more than 256 levels deep by line \d+/);
      assert.equal(setsNothing(text), false, 'not "empty" either');
    }
    assert.equal(yamlDepthProblem('a: "]]]]]]]]]"\nb: [[[1]]]\nc: |\n  [[[[[[ text\nd: \'it\'\'s [\'\n'), undefined, 'quoted and block text is not structure');
    assert.equal(yamlDepthProblem(`x: [${Array.from({ length: 2000 }, (_, i) => `item${i}`).join(', ')}]\n`), undefined, 'a long flat list');
  });

  it('refuses a mapping where a list belongs instead of putting the default list in its place', () => {
    assert.deepEqual(
      problems('rules: { dirs: { local: /tmp/x } }\nalerts: { outputs: { siem: { name: siem, type: file, file: { path: /tmp/a.ndjson } } } }\n', ServerConfigSchema).map((p) => [p.code, p.path, p.line, p.message]),
      [
        ['HADES_ERR_CONFIG_TYPE', 'rules.dirs', 1, "'rules.dirs' must be a list (got a mapping)"],
        ['HADES_ERR_CONFIG_TYPE', 'alerts.outputs', 2, "'alerts.outputs' must be a list (got a mapping)"],
      ],
    );
    assert.equal(problems('driver: { file_watch: { etc: /etc/ } }\n')[0]?.message, "'driver.file_watch' must be a list (got a mapping)");
  });

  it('refuses a NUL character in any setting (a path would be cut short at it)', () => {
    assert.deepEqual(
      problems('outputs:\n  file: { path: "/var/log/hades/a\\0.ndjson" }\nplugins:\n  installed:\n    - { manifest: "/opt/x\\0/manifest.json" }\n').map((p) => [p.code, p.path, p.line]),
      [
        ['HADES_ERR_CONFIG_VALUE', 'outputs.file.path', 2],
        ['HADES_ERR_CONFIG_VALUE', 'plugins.installed.0.manifest', 5],
      ],
    );
    assert.match(problems('agent: { data_dir: "/var/lib/h\\0" }\n')[0]?.message ?? '', /'agent\.data_dir' holds a NUL character/);
    assert.equal(problems('"log\\0": 1\n')[0]?.code, 'HADES_ERR_CONFIG_VALUE', 'in a key too');
  });

  it('refuses a __proto__ key at any depth instead of taking its keys as the section\'s own', () => {
    // It used to pass, the driver turned off by keys no schema checked.
    assert.deepEqual(
      problems('plugins:\n  __proto__: { driver: false }\nlog:\n  level: warn\n  __proto__: { level: debug, bogus: 1 }\n').map((p) => [p.code, p.path, p.line, p.column]),
      [
        ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'plugins.__proto__', 2, 3],
        ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'log.__proto__', 5, 3],
      ],
    );
    assert.equal(problems('__proto__: { agent: {} }\n', ServerConfigSchema)[0]?.code, 'HADES_ERR_CONFIG_UNKNOWN_KEY');
  });

  it('refuses a key that is a list or a mapping before converting it (its text grew with the square of its depth)', () => {
    const key = `${'['.repeat(250)}0${']'.repeat(250)}`;
    const text = Array.from({ length: 20 }, (_, i) => key.replace('0', String(i))).map((k) => `${k}: 1\n`).join('');
    const start = Date.now();
    const found = problems(`log:\n  ? { a: 1 }\n  : 2\n${text}`);
    assert.ok(Date.now() - start < 1000, `${Date.now() - start} ms`);
    assert.deepEqual(found[0] && [found[0].code, found[0].path, found[0].line, found[0].column, found[0].message], ['HADES_ERR_CONFIG_UNKNOWN_KEY', 'log', 2, 5, "'log' has a key that is a list or a mapping: no setting is named by one"]);
    assert.equal(found.length, 21);
    // 400 KB of message per key of 500 bytes, before.
    assert.ok(found.every((p) => p.message.length < 200 && p.path.length < 20));
    assert.equal(setsNothing(`${key}: 1\n`), false);
    assert.equal(problems('k: &k [a]\nlog:\n  *k : 1\n')[0]?.message, "'log' has a key that is a list or a mapping: no setting is named by one");
  });

  it('names .nan and .inf where an integer belongs (JSON would show them as null)', () => {
    assert.deepEqual(
      problems('log:\n  max_mb: .nan\n  max_files: -.inf\n').map((p) => [p.code, p.path, p.line, p.message]),
      [
        ['HADES_ERR_CONFIG_TYPE', 'log.max_mb', 2, "'log.max_mb' must be an integer (got a number NaN)"],
        ['HADES_ERR_CONFIG_TYPE', 'log.max_files', 3, "'log.max_files' must be an integer (got a number -Infinity)"],
      ],
    );
  });

  it('refuses a configuration file that is not UTF-8 with the line and column of the first byte that is not, and reads one that is', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hades-config-'));
    try {
      const latin1 = path.join(dir, 'latin1.yaml');
      // "/var/log/hadès.log" saved as Latin-1: it used to be read as "hadï¿½s.log", another file.
      writeFileSync(latin1, Buffer.concat([Buffer.from('log:\n  level: info\n  file: /var/log/had'), Buffer.from([0xe8]), Buffer.from('s.log\n')]));
      assert.throws(
        () => readConfigText(latin1),
        (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_CONFIG_INVALID' && /latin1\.yaml:3:21: HADES_ERR_CONFIG_SYNTAX: byte 0xE8 is not UTF-8 text/.test(e.message),
      );
      const utf8 = path.join(dir, 'utf8.yaml');
      writeFileSync(utf8, '\ufeff# é\nlog:\n  file: /var/log/hadès.log\n');
      const result = parseRoleConfig(readConfigText(utf8), 'agent');
      assert.ok(result.ok);
      assert.equal(result.config.log.file, '/var/log/hadès.log');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves a plugin\'s limits to plugins.limits except what the plugin overrides (defaults used to fill every override)', () => {
    const result = parseRoleConfig('plugins:\n  limits: { events_per_s: 50 }\n  inventory: { limits: { memory_mb: 300 } }\n  installed:\n    - { manifest: /opt/x/manifest.json }\n', 'agent');
    assert.ok(result.ok);
    assert.equal(result.config.plugins.installed[0]?.limits, undefined);
    assert.deepEqual(result.config.plugins.inventory.limits, { memory_mb: 300 });
    assert.equal(result.config.plugins.limits.events_per_s, 50);
  });

  it('refuses a server API address that is not a URL (enrollment would fail on it)', () => {
    const result = parseRoleConfig(`outputs:\n  server: { enabled: true, api: "https://[::", token: x, ca_sha256: ${'a'.repeat(64)} }\n`, 'agent');
    assert.ok(!result.ok);
    assert.deepEqual([result.problems[0]?.code, result.problems[0]?.path, result.problems[0]?.line], ['HADES_ERR_CONFIG_VALUE', 'outputs.server.api', 2]);
  });

  it('adds driver.file_watch_extra to the default watch list, and refuses the two together past what the driver holds', () => {
    const added = parseRoleConfig('driver:\n  file_watch_extra: [/opt/app/bin/, /srv/www/]\n', 'agent');
    assert.ok(added.ok);
    assert.ok(added.config.driver.file_watch.includes('/etc/'), 'the defaults stay');
    assert.deepEqual(added.config.driver.file_watch_extra, ['/opt/app/bin/', '/srv/www/']);
    const many = Array.from({ length: 200 }, (_, i) => `/srv/site${i}/`);
    const tooMany = parseRoleConfig(`driver:\n  file_watch_extra: [${many.join(', ')}]\n`, 'agent');
    assert.ok(!tooMany.ok);
    assert.deepEqual([tooMany.problems[0]?.code, tooMany.problems[0]?.path, tooMany.problems[0]?.line], ['HADES_ERR_CONFIG_VALUE', 'driver.file_watch_extra', 2]);
    assert.match(tooMany.problems[0]?.message ?? '', /at most 224/);
    const bad = parseRoleConfig('driver:\n  file_watch_extra: [relative/path]\n', 'agent');
    assert.ok(!bad.ok);
    assert.equal(bad.problems[0]?.path, 'driver.file_watch_extra.0');
  });

  it("refuses more '*' entries under one folder than the driver holds (16), counting the defaults", () => {
    const defaults = parseRoleConfig('', 'agent');
    assert.ok(defaults.ok);
    const underHome = defaults.config.driver.file_watch.filter((p) => p.startsWith('/home/*')).length;
    assert.ok(underHome <= 16, `the defaults use ${underHome} of /home/'s 16`);
    const fits = Array.from({ length: 16 - underHome }, (_, i) => `/home/*/.extra${i}`);
    assert.ok(parseRoleConfig(`driver:\n  file_watch_extra: [${fits.join(', ')}]\n`, 'agent').ok);
    const over = parseRoleConfig(`driver:\n  file_watch_extra: [${[...fits, '/home/*/.one-more'].join(', ')}]\n`, 'agent');
    assert.ok(!over.ok);
    assert.deepEqual([over.problems[0]?.code, over.problems[0]?.path], ['HADES_ERR_CONFIG_VALUE', 'driver.file_watch_extra']);
    assert.match(over.problems[0]?.message ?? '', /17 entries of the form \/home\/\*\/\.\.\.; the driver takes at most 16/);
    // Other folders have their own 16.
    const others = Array.from({ length: 16 }, (_, i) => `/srv/*/.f${i}`);
    assert.ok(parseRoleConfig(`driver:\n  file_watch_extra: [${others.join(', ')}]\n`, 'agent').ok);
  });

  it('takes outputs.server.ack_timeout_s in whole seconds from 10 to 3600, 120 by default, and refuses the rest with a coded problem', () => {
    const result = parseRoleConfig('', 'agent');
    assert.ok(result.ok);
    assert.equal(result.config.outputs.server.ack_timeout_s, 120);
    const set = parseRoleConfig('outputs:\n  server: { ack_timeout_s: 10 }\n', 'agent');
    assert.ok(set.ok && set.config.outputs.server.ack_timeout_s === 10);
    const found = (value: string) => problems(`outputs:\n  server:\n    ack_timeout_s: ${value}\n`).map((p) => [p.code, p.path, p.line, p.message]);
    assert.deepEqual(found('0'), [['HADES_ERR_CONFIG_VALUE', 'outputs.server.ack_timeout_s', 3, "'outputs.server.ack_timeout_s' must be at least 10 (got 0)"]]);
    assert.deepEqual(found('-5'), [['HADES_ERR_CONFIG_VALUE', 'outputs.server.ack_timeout_s', 3, "'outputs.server.ack_timeout_s' must be at least 10 (got -5)"]]);
    assert.deepEqual(found('86400'), [['HADES_ERR_CONFIG_VALUE', 'outputs.server.ack_timeout_s', 3, "'outputs.server.ack_timeout_s' must be at most 3600 (got 86400)"]]);
    assert.deepEqual(found('1.5').map((p) => p.slice(0, 2)), [['HADES_ERR_CONFIG_TYPE', 'outputs.server.ack_timeout_s']]);
    assert.deepEqual(found('"2m"').map((p) => p.slice(0, 2)), [['HADES_ERR_CONFIG_TYPE', 'outputs.server.ack_timeout_s']]);
  });

  it('keeps the agent and server schemas apart', () => {
    assert.equal(problems('listen:\n  api: 127.0.0.1:1\n', AgentConfigSchema)[0]?.code, 'HADES_ERR_CONFIG_UNKNOWN_KEY');
    assert.equal(problems('driver:\n  backend: ebpf\n', ServerConfigSchema)[0]?.code, 'HADES_ERR_CONFIG_UNKNOWN_KEY');
    const server = parseConfig('listen:\n  api: 127.0.0.1:9000\n', ServerConfigSchema);
    assert.ok(server.ok && server.config.listen.api === '127.0.0.1:9000' && server.config.listen.agents === '127.0.0.1:7443');
  });

  it('names the bound a value broke where null is also allowed (port: 0), not the types', () => {
    const found = problems('alerts:\n  outputs:\n    - { name: s, type: syslog, syslog: { host: 127.0.0.1, port: 0 } }\n', ServerConfigSchema);
    assert.deepEqual(found.map((p) => [p.code, p.path, p.message]), [['HADES_ERR_CONFIG_VALUE', 'alerts.outputs.0.syslog.port', "'alerts.outputs.0.syslog.port' must be at least 1 (got 0)"]]);
    assert.equal(problems('alerts:\n  outputs:\n    - { name: s, type: syslog, syslog: { host: 127.0.0.1, port: "x" } }\n', ServerConfigSchema)[0]?.code, 'HADES_ERR_CONFIG_TYPE', 'a text is still a type problem');
  });

  it('checks addresses, host names, URLs and header values as the programs will use them', () => {
    const paths = (text: string, schema: typeof AgentConfigSchema | typeof ServerConfigSchema) => problems(text, schema).map((p) => [p.code, p.path]);
    const value = (path: string) => ['HADES_ERR_CONFIG_VALUE', path];
    assert.deepEqual(paths('listen:\n  agents: garbage\n  api: 127.0.0.1:99999\n', ServerConfigSchema), [value('listen.agents'), value('listen.api')]);
    assert.deepEqual(paths('data_dir: relative/dir\nadvertise:\n  hostnames: ["bad host name!"]\n  gateways: ["gw:0", "::1:7443"]\n', ServerConfigSchema), [value('data_dir'), value('advertise.hostnames.0'), value('advertise.gateways.0'), value('advertise.gateways.1')]);
    assert.match(problems('data_dir: ./data\n', ServerConfigSchema)[0]?.message ?? '', /An absolute path/);
    assert.deepEqual(paths('outputs:\n  http:\n    url: "http://"\n    headers: { X-A: "a\\nb", X-B: "€" }\n  server:\n    addresses: ["host:99999"]\n', AgentConfigSchema), [
      value('outputs.http.url'),
      value('outputs.http.headers.X-A'),
      value('outputs.http.headers.X-B'),
      value('outputs.server.addresses.0'),
    ]);
    // Credentials in the URL: fetch refuses them on every batch; they belong in a header.
    assert.deepEqual(paths('outputs:\n  http:\n    url: "http://user:pw@collector.example/events"\n', AgentConfigSchema), [value('outputs.http.url')]);
    // An IPv6 gateway without brackets: its last group would be read as the port.
    assert.deepEqual(paths('outputs:\n  server:\n    addresses: ["::1:7443"]\n', AgentConfigSchema), [value('outputs.server.addresses.0')]);
    // The honeypot's address is checked as the plugin checks it.
    for (const bind of ['not an address', '999.1.1.1']) {
      const result = parseRoleConfig(`plugins:\n  honeypot:\n    bind: "${bind}"\n`, 'agent');
      assert.deepEqual(result.ok ? [] : result.problems.map((p) => [p.code, p.path]), [value('plugins.honeypot.bind')], bind);
    }
    // What worked before keeps working: empty or bare IPv6 listen hosts, gRPC targets, zone ids,
    // names with a trailing dot, ports with a leading zero.
    assert.ok(parseConfig('listen: { api: ":7080", agents: "::1:7443" }\nadvertise: { gateways: ["hades.example:7443", "[fd00::1]:7443"], hostnames: ["hades.example", "*.example.org", "10.0.0.1", "::1"] }\n', ServerConfigSchema).ok);
    assert.ok(parseConfig('listen: { api: "[::1]:0", agents: "0.0.0.0:07443" }\n', ServerConfigSchema).ok);
    for (const address of ['dns:///gw.example:7443', 'ipv4:10.0.0.1:7443', '[fe80::1%eth0]:7443', 'gw.example.:7443', 'host:08443']) {
      assert.ok(parseRoleConfig(`outputs: { server: { addresses: ["${address}"] } }\n`, 'agent').ok, address);
    }
    assert.ok(parseRoleConfig('plugins: { honeypot: { bind: "fe80::1%eth0" } }\noutputs: { http: { url: "https://collector.example:8443/in?x=1", headers: { Authorization: "Bearer x", X-L: "café" } } }\n', 'agent').ok);
  });

  it('takes an IP address as the honeypot plugin (net.isIP) does', () => {
    for (const a of ['::', '0.0.0.0', '192.0.2.10', 'fe80::1%eth0', '::ffff:1.2.3.4', '1:2:3:4:5:6:7:8', '999.1.1.1', '1.2.3', 'not', '::1::2', '01.2.3.4', 'fe80::1%', '1:2:3:4:5:6:7:8:9', '', '[::1]']) {
      assert.equal(isIpAddress(a), isIP(a) !== 0, a);
    }
  });

  it('throws one coded error listing every problem from loadConfig', () => {
    assert.throws(
      () => loadConfig('driver:\n  backnd: x\n', AgentConfigSchema, 'agent.yaml'),
      (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_CONFIG_INVALID' && /agent.yaml:2:3: HADES_ERR_CONFIG_UNKNOWN_KEY/.test(e.message),
    );
  });
});
