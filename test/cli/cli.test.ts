// hades-test: shares the machine
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { commands } from '../../src/cli/registry.js';
import { runHades } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Asserts a failure: the status, and exactly one stderr line carrying the code. */
function assertCodedFailure(result: { status: number | null; stderr: string }, status: number, code: string): void {
  assert.equal(result.status, status, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  assert.match(lines.at(-1) ?? '', new RegExp(`^hades: ${code}: `));
}

describe('hades command', () => {
  it('lists every top-level command in --help', async () => {
    const r = await runHades(['--help']);
    assert.equal(r.status, 0);
    for (const top of new Set(commands.map((c) => c.name.split(' ')[0]))) assert.match(r.stdout, new RegExp(`^  ${top}\\b`, 'm'), top);
  });

  it('prints --help for every registered command, marking planned ones', async () => {
    for (const spec of commands) {
      const r = await runHades([...spec.name.split(' '), '--help']);
      assert.equal(r.status, 0, `${spec.name}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`Usage: hades ${spec.name}`));
      if (!spec.run) assert.match(r.stdout, /not yet available/);
    }
  });

  it('prints its version', async () => {
    const r = await runHades(['--version']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('rejects an unknown command with one coded line and a suggestion', async () => {
    const r = await runHades(['evnts']);
    assertCodedFailure(r, 2, 'HADES_ERR_CLI_UNKNOWN_COMMAND');
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    assert.match(r.stderr, /did you mean events\?/);
    assertCodedFailure(await runHades(['config', 'chek']), 2, 'HADES_ERR_CLI_UNKNOWN_COMMAND');
  });

  it('rejects an unknown flag on any command', async () => {
    assertCodedFailure(await runHades(['--frobnicate']), 2, 'HADES_ERR_CLI_UNKNOWN_OPTION');
    assertCodedFailure(await runHades(['config', 'schema', '--rol', 'agent']), 2, 'HADES_ERR_CLI_UNKNOWN_OPTION');
  });

  it('asks for a subcommand when a group is typed alone', async () => {
    const r = await runHades(['config']);
    assertCodedFailure(r, 2, 'HADES_ERR_CLI_MISSING_ARGUMENT');
    assert.match(r.stderr, /Usage: hades config/);
    assert.doesNotMatch(r.stderr, /help \[command\]/);
  });

  it('rejects missing and excess arguments', async () => {
    assertCodedFailure(await runHades(['config', 'check']), 2, 'HADES_ERR_CLI_MISSING_ARGUMENT');
    assertCodedFailure(await runHades(['config', 'check', 'a', 'b']), 2, 'HADES_ERR_CLI_TOO_MANY_ARGUMENTS');
    assertCodedFailure(await runHades(['config', 'schema', '--role']), 2, 'HADES_ERR_CLI_MISSING_ARGUMENT');
    assertCodedFailure(await runHades(['config', 'schema', '--role', 'toaster']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    // Checked before any server is asked, in the command's own words.
    const badFor = await runHades(['alerts', 'suppress', '--rule', 'exec_from_tmp', '--host', 'web-1', '--for', '1 week', '--reason', 'x', '--server', 'https://127.0.0.1:1', '--token', 'hadesapi_x']);
    assertCodedFailure(badFor, 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assert.match(badFor.stderr, /--for must be a duration: .*30m, 12h, 7d\), not '1 week'/);
    assertCodedFailure(await runHades(['alerts', 'suppress', '--rule', 'exec_from_tmp', '--for', '1h', '--reason', ' ', '--server', 'https://127.0.0.1:1', '--token', 'hadesapi_x']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
  });

  it('says plainly that a planned command is not yet available, and fails', async () => {
    for (const spec of commands.filter((c) => !c.run)) {
      const r = await runHades(spec.name.split(' '));
      assertCodedFailure(r, 2, 'HADES_ERR_NOT_YET_AVAILABLE');
      assert.match(r.stderr, /not yet available/);
    }
  });
});

describe('hades events, bad input', () => {
  it('refuses unknown, not-yet-produced and empty actions, bad durations and backends', async () => {
    assertCodedFailure(await runHades(['events', '--action', 'teleport']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    const later = await runHades(['events', '--action', 'exec,ssh_login']);
    assertCodedFailure(later, 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assert.match(later.stderr, /ssh_login comes from the agent's plugins or the agent itself, not the kernel/);
    const planned = await runHades(['events', '--action', 'scan_match']);
    assertCodedFailure(planned, 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assert.match(planned.stderr, /scan_match is not produced yet \(it comes with YARA scanning\)/);
    assertCodedFailure(await runHades(['events', '--action', ',']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assertCodedFailure(await runHades(['events', '--duration', '-3']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assertCodedFailure(await runHades(['events', '--duration', 'soon']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    for (const odd of ['0x10', '1e3', ' 5']) assertCodedFailure(await runHades(['events', '--duration', odd]), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assertCodedFailure(await runHades(['events', '--backend', 'kprobe']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assertCodedFailure(await runHades(['events', '--duration', '3000000']), 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
  });

  it('refuses a bad configuration file before touching the kernel', async () => {
    const r = await runHades(['events', '--config', file('events-bad.yaml', 'driver:\n  argv_maxx: 1\n')]);
    assertCodedFailure(r, 2, 'HADES_ERR_CONFIG_INVALID');
    assert.match(r.stderr, /did you mean 'driver.argv_max'/);
  });

  it('says clearly when the driver binary is missing', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
    const r = await runHades(['events', '--duration', '1'], { env: { ...process.env, HADES_DRIVER: path.join(dir, 'no-driver') } });
    assertCodedFailure(r, 3, 'HADES_ERR_DRIVER_NOT_FOUND');
  });
});

describe('hades config', () => {
  it('accepts a valid file', async () => {
    const r = await runHades(['config', 'check', file('ok.yaml', 'driver:\n  backend: ebpf\n')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok \(agent configuration\)/);
  });

  it('rejects a misspelt key by naming it, its position and the intended key', async () => {
    const p = file('typo.yaml', 'driver:\n  backend: ebpf\n  argv_mx: 8192\n');
    const r = await runHades(['config', 'check', p]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`${p}:3:3: HADES_ERR_CONFIG_UNKNOWN_KEY: unknown key 'driver.argv_mx'; did you mean 'driver.argv_max'?`), r.stderr);
    assert.match(r.stderr.trimEnd().split('\n').at(-1) ?? '', /^hades: HADES_ERR_CONFIG_INVALID: /);
  });

  it('checks server files against the server schema', async () => {
    const p = file('server.yaml', 'listen:\n  api: 127.0.0.1:9000\n');
    assert.equal((await runHades(['config', 'check', '--role', 'server', p])).status, 0);
    assert.equal((await runHades(['config', 'check', p])).status, 2);
  });

  it('checks the TLS files of the alert outputs, at their positions, in config check and before the server starts', async () => {
    const garbage = file('garbage.pem', 'not a pem\n');
    const dataDir = path.join(dir, 'never-made');
    const p = file(
      'outputs-tls.yaml',
      `data_dir: ${dataDir}\nlisten: { api: "127.0.0.1:0", agents: "127.0.0.1:0" }\nalerts:\n  outputs:\n    - { name: d, type: syslog, syslog: { host: localhost, tls: { ca_file: ${garbage} } } }\n`,
    );
    const column = `    - { name: d, type: syslog, syslog: { host: localhost, tls: { ca_file: `.length + 1;
    const r = await runHades(['config', 'check', '--role', 'server', p]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${p}:5:${column}: HADES_ERR_ALERT_OUTPUT_TLS: output 'd': ${garbage} holds no PEM certificate`), r.stderr);
    const s = await runHades(['server', '--config', p]);
    assertCodedFailure(s, 2, 'HADES_ERR_CONFIG_INVALID');
    assert.ok(s.stderr.includes(`${p}:5:${column}: HADES_ERR_ALERT_OUTPUT_TLS`), s.stderr);
    assert.equal(existsSync(dataDir), false, 'the data folder was made');
  });

  it('checks that the rule paths can be read, at their positions, in config check and before the server starts', async () => {
    const dataDir = path.join(dir, 'never-made-rules');
    const missing = path.join(dir, 'no-such-rules');
    const p = file('rules-paths.yaml', `data_dir: ${dataDir}\nlisten: { api: "127.0.0.1:0", agents: "127.0.0.1:0" }\nrules:\n  dirs: [${dir}]\n  sigma_dirs:\n    - ${missing}\n`);
    const r = await runHades(['config', 'check', '--role', 'server', p]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${p}:6:7: HADES_ERR_RULE_PACK_READ: cannot read ${missing}: ENOENT`), r.stderr);
    assert.equal(r.stderr.match(/HADES_ERR_RULE_PACK_READ/g)?.length, 1, 'the folder that exists is not reported');
    const s = await runHades(['server', '--config', p]);
    assertCodedFailure(s, 2, 'HADES_ERR_CONFIG_INVALID');
    assert.equal(existsSync(dataDir), false, 'the data folder was made');
  });

  it('says that a configuration whose API port is 0 does not name the port its server got', async () => {
    const p = file('port-zero.yaml', `data_dir: ${path.join(dir, 'port-zero')}\nlisten: { api: "127.0.0.1:0" }\n`);
    const r = await runHades(['agents', 'list', '--config', p]);
    assertCodedFailure(r, 2, 'HADES_ERR_CLI_MISSING_ARGUMENT');
    assert.match(r.stderr, /listen\.api of this configuration is 127\.0\.0\.1:0, a port the system chooses at each start/);
  });

  it('refuses a misspelt value of an alert or token flag in the flag\'s words, with the closest value, before anything is sent', async () => {
    const alert = '123e4567-e89b-12d3-a456-426614174000';
    const cases: [string[], RegExp][] = [
      [['alerts', 'list', '--severity', 'hgh'], /--severity 'hgh' is not one of info, low, medium, high, critical; did you mean 'high'\?/],
      [['alerts', 'list', '--status', 'new,resolvd'], /--status 'resolvd' is not one of new, acknowledged, resolved, false_positive; did you mean 'resolved'\?/],
      [['alerts', 'triage', alert, '--status', 'resolvd'], /--status 'resolvd' is not one of/],
      [['alerts', 'triage', alert, '--assignee', ''], /--assignee must be a name: not blank/],
      [['tokens', 'create', 'bob', '--role', 'analyst', '--ttl', '5x'], /--ttl must be a duration such as 30m, 1h or 7d \(got '5x'\)/],
    ];
    for (const [args, message] of cases) {
      const r = await runHades(args);
      assertCodedFailure(r, 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
      assert.match(r.stderr, message, args.join(' '));
    }
  });

  it('answers unreadable inputs with coded errors', async () => {
    assertCodedFailure(await runHades(['config', 'check', path.join(dir, 'absent.yaml')]), 3, 'HADES_ERR_CONFIG_READ');
    mkdirSync(path.join(dir, 'folder.yaml'));
    assertCodedFailure(await runHades(['config', 'check', path.join(dir, 'folder.yaml')]), 2, 'HADES_ERR_CONFIG_NOT_A_FILE');
    assertCodedFailure(await runHades(['config', 'check', file('big.yaml', `# ${'x'.repeat(2 * 1024 * 1024)}`)]), 2, 'HADES_ERR_CONFIG_TOO_LARGE');
    assertCodedFailure(await runHades(['config', 'check', file('bin.yaml', '\u0000\u0001\u0002: [')]), 2, 'HADES_ERR_CONFIG_INVALID');
    // Empty, or white space only (an interrupted write): refused for both roles, a comment is every default.
    for (const [name, text] of [['empty.yaml', ''], ['blank.yaml', ' \n\n\t\n']] as const) {
      for (const role of ['agent', 'server']) {
        const r = await runHades(['config', 'check', '--role', role, file(name, text)]);
        assertCodedFailure(r, 2, 'HADES_ERR_CONFIG_INVALID');
        assert.match(r.stderr, /HADES_ERR_CONFIG_EMPTY: .* is empty/);
      }
    }
    const defaults = await runHades(['config', 'check', '--role', 'server', file('defaults.yaml', '# defaults\n')]);
    assert.equal(defaults.status, 0, defaults.stderr);
  });

  it('prints the result as JSON on request', async () => {
    const r = await runHades(['config', 'check', '--json', file('typo2.yaml', 'log:\n  levl: info\n')]);
    assert.equal(r.status, 2);
    const out = JSON.parse(r.stdout) as { ok: boolean; problems: { code: string; line: number; suggestion: string }[] };
    assert.equal(out.ok, false);
    assert.deepEqual([out.problems[0]?.code, out.problems[0]?.line, out.problems[0]?.suggestion], ['HADES_ERR_CONFIG_UNKNOWN_KEY', 2, 'level']);
  });

  it('prints defaults that pass its own check, for both roles', async () => {
    for (const role of ['agent', 'server']) {
      const d = await runHades(['config', 'defaults', '--role', role]);
      assert.equal(d.status, 0);
      const r = await runHades(['config', 'check', '--role', role, file(`defaults-${role}.yaml`, d.stdout)]);
      assert.equal(r.status, 0, r.stderr);
    }
  });

  it('prints a JSON Schema that rejects unknown keys', async () => {
    const r = await runHades(['config', 'schema']);
    assert.equal(r.status, 0);
    const schema = JSON.parse(r.stdout) as { additionalProperties: boolean; properties: Record<string, { additionalProperties: boolean }> };
    assert.equal(schema.additionalProperties, false);
    assert.equal(schema.properties['driver']?.additionalProperties, false);
  });
});

describe('hades tasks create and groups set, checked before the server is asked', () => {
  it('points a number given as text to the NAME:=JSON syntax', async () => {
    const r = await runHades(['tasks', 'create', 'log_level', 'level=debug', 'duration_s=60', '--agent', 'ag_x']);
    assertCodedFailure(r, 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assert.match(r.stderr, /duration_s is a number: write duration_s:=60 /);
    const word = await runHades(['tasks', 'create', 'query', 'sql=SELECT 1', 'max_rows=many', '--agent', 'ag_x']);
    assertCodedFailure(word, 2, 'HADES_ERR_CLI_INVALID_ARGUMENT');
    assert.match(word.stderr, /max_rows is a number: write max_rows:=NUMBER /);
  });

  it('lists a group configuration\'s schema problems and its consistency problems together', async () => {
    const config = file('group.yaml', 'driver:\n  ringbuf_mbb: 4\nplugins:\n  honeypot:\n    ports: [{ port: 2323 }, { port: 2323 }]\n');
    const r = await runHades(['groups', 'set', 'web', config, '--server', 'https://127.0.0.1:1']);
    assertCodedFailure(r, 2, 'HADES_ERR_CONFIG_INVALID');
    assert.match(r.stderr, /group\.yaml:2:3: HADES_ERR_CONFIG_UNKNOWN_KEY: unknown key 'driver\.ringbuf_mbb'/);
    assert.match(r.stderr, /group\.yaml:5:37: HADES_ERR_CONFIG_VALUE: tcp port 2323 is named twice/);
    assert.match(r.stderr, /2 problems, listed above; nothing was stored/);
  });
});
