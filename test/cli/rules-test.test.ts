// hades-test: shares the machine
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runHades } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-rules-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

const curlRule = (samples: string) => `rules:
  - id: curl_exec
    title: curl executed
    severity: low
    tags: [attack.t1105]
    condition: event.action = exec and process.name = curl
    samples:
${samples}`;

const passing = curlRule(`      match:
        - {event: {action: exec}, process: {name: curl}}
      no_match:
        - {event: {action: exec}, process: {name: wget}}
`);

describe('hades rules test', () => {
  it('passes the default pack: every sample of every rule', async () => {
    const r = await runHades(['rules', 'test'], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.at(-1), 'ok');
    const summary = /^(\d+) files, (\d+) rules; (\d+) samples: (\d+) passed, 0 failed; 0 errors, 0 warnings$/.exec(lines.at(-2) ?? '');
    assert.ok(summary, lines.at(-2));
    assert.ok(Number(summary[2]) >= 50, `${summary[2]} rules`);
    assert.equal(summary[3], summary[4]);
    assert.equal(lines.length, 2, 'nothing but the summary');
  });

  it('passes a file whose samples all pass', async () => {
    const r = await runHades(['rules', 'test', file('ok.yaml', passing)]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '1 file, 1 rule; 2 samples: 2 passed, 0 failed; 0 errors, 0 warnings\nok\n');
  });

  it('exits 1 on a failing sample, naming the rule, the sample and its position', async () => {
    const p = file(
      'failing.yaml',
      curlRule(`      match:
        - {event: {action: exec}, process: {name: wget}}
      no_match:
        - {event: {action: exec}, process: {name: ls}}
`),
    );
    const r = await runHades(['rules', 'test', p]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^${p}:9:11: error HADES_ERR_RULE_SAMPLE_FAILED: rule 'curl_exec', match sample 1: expected a match, got none$`, 'm'));
    assert.match(r.stdout, /2 samples: 1 passed, 1 failed; 1 error, 0 warnings\nFAILED\n$/);
  });

  it('exits 1 on a malformed rule file, with the code and file:line:column of each problem', async () => {
    const p = file('malformed.yaml', 'rules:\n  - id: r\n    title: T\n    severty: low\n    condition: process.nme = x\n');
    const r = await runHades(['rules', 'test', p]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^${p}:4:5: error HADES_ERR_RULE_INVALID: unknown key 'severty'; did you mean 'severity'\\?$`, 'm'));
    const bad = file('not-yaml.yaml', 'rules:\n  - id: r\n   title: x\n');
    const r2 = await runHades(['rules', 'test', bad]);
    assert.equal(r2.status, 1);
    assert.match(r2.stdout, new RegExp(`^${bad}:3:\\d+: error HADES_ERR_RULE_YAML: `, 'm'));
  });

  it('reports a file too large or not UTF-8 as that file\'s error and tests the other files of the folder', async () => {
    const folder = path.join(dir, 'mixed');
    file('mixed/a-big.yaml', '#'.repeat(8 * 1024 * 1024 + 1));
    file('mixed/b-ok.yaml', passing);
    const latin1 = path.join(folder, 'c-latin1.yaml');
    writeFileSync(latin1, Buffer.concat([Buffer.from('rules:\n  - id: l\n    title: T\n    severity: low\n    condition: process.name = "'), Buffer.from([0xc3, 0x28]), Buffer.from('"\n')]));
    const r = await runHades(['rules', 'test', folder]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^${path.join(folder, 'a-big.yaml')}: error HADES_ERR_RULE_TOO_LARGE: the file is 8388609 bytes; a rule file may be 8388608$`, 'm'));
    assert.match(r.stdout, new RegExp(`^${latin1}:5:32: error HADES_ERR_RULE_YAML: byte 0xC3 is not UTF-8 text: save the file as UTF-8$`, 'm'));
    assert.match(r.stdout, /3 files, 1 rule; 2 samples: 2 passed, 0 failed; 2 errors, 0 warnings\nFAILED\n$/, 'the good file\'s rule was tested');
  });

  it('prints every independent error of a rule, counts rules as written, and caps the list', async () => {
    const p = file(
      'several.yaml',
      `${passing}  - id: curl_exec\n    title: T\n    severity: hgih\n    condition: (process.name = x\n    output: "{process.nmae}"\n  - override: curl_exec\n    replace: {enabled: true}\n`,
    );
    const r = await runHades(['rules', 'test', p]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const codes = r.stdout.split('\n').filter((l) => l.startsWith(p)).map((l) => l.slice(p.length + 1).replace(/: error (\S+):.*$/, ' $1'));
    assert.deepEqual(codes, ['12:5 HADES_ERR_RULE_DUPLICATE_ID', '14:15 HADES_ERR_RULE_INVALID', '15:33 HADES_ERR_RULE_SYNTAX', '16:15 HADES_ERR_RULE_UNKNOWN_FIELD']);
    // Two rules written (the override is not one), one of them not loaded.
    assert.match(r.stdout, /^1 file, 2 rules \(1 not loaded\); 2 samples: 2 passed, 0 failed; 4 errors, 0 warnings\nFAILED\n$/m);

    const broken = Array.from({ length: 1200 }, (_, i) => `  - id: r${i}\n    title: T\n    severity: hgih\n    condition: process.nme = x\n`).join('');
    const many = await runHades(['rules', 'test', file('many.yaml', `rules:\n${broken}`)]);
    const lines = many.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1000 + 3, 'the problems listed, the count of the others, the summary, FAILED');
    assert.match(lines.at(-3)!, /: error HADES_ERR_RULE_TOO_MANY_PROBLEMS: 1400 more problems \(1400 errors, 0 warnings\) are not listed/);
    assert.equal(lines.at(-2), '1 file, 1200 rules (1200 not loaded); 0 samples: 0 passed, 0 failed; 2400 errors, 0 warnings');
  });

  it('reports invalid sample events with their position', async () => {
    const p = file('invalid-sample.yaml', curlRule('      match:\n        - {event: {action: exec}, process: {name: curl, comm: curl}}\n      no_match:\n        - {event: {action: exec}, process: {name: ls}}\n'));
    const r = await runHades(['rules', 'test', p]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, new RegExp(`^${p}:9:57: error HADES_ERR_RULE_SAMPLE_INVALID: match sample 1: 'process.comm' is not a field of exec events`, 'm'));
  });

  it('loads folders, and the default pack first with --default-pack, so that an override is tested against the pack', async () => {
    file('folder/a.yaml', passing);
    file('folder/sub/b.yml', curlRule('      match: [{event: {action: exec}, process: {name: curl}}]\n      no_match: [{event: {action: exec}, process: {name: ls}}]\n').replace('curl_exec', 'curl_exec_2'));
    const r = await runHades(['rules', 'test', path.join(dir, 'folder')]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^2 files, 2 rules; 4 samples: 4 passed/m);
    // A local override that silences the pack's rule: its own samples now fail.
    const p = file('override.yaml', 'rules:\n  - override: exec_from_dev_shm\n    replace:\n      enabled: true\n    append:\n      condition: process.name = nothing-ever\n');
    const o = await runHades(['rules', 'test', '--default-pack', p], { timeoutMs: 60_000 });
    assert.equal(o.status, 1, o.stdout + o.stderr);
    // The pack's files are named rules/<file> wherever Hades is installed, as in the server's alerts.
    assert.match(o.stdout, /^rules\/execution\.yaml:\d+:\d+: error HADES_ERR_RULE_SAMPLE_FAILED: rule 'exec_from_dev_shm', match sample 1: expected a match, got none$/m);
  });

  it('counts a sample whose event is not valid as invalid (not run), not as failed, and fails the run', async () => {
    const p = file('invalid.yaml', curlRule('      match:\n        - {event: {action: exec}, process: {name: curl}}\n        - {event: {action: exec}, process: {name: 5}}\n      no_match:\n        - {event: {action: exec}, process: {name: wget}}\n'));
    const r = await runHades(['rules', 'test', p]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /HADES_ERR_RULE_SAMPLE_INVALID: match sample 2: 'process\.name': expected string/);
    assert.match(r.stdout, /3 samples: 2 passed, 0 failed, 1 invalid \(not run\); 1 error, 0 warnings\nFAILED\n$/);
  });

  it('prints one JSON object with --json', async () => {
    const p = file('json.yaml', curlRule('      match:\n        - {event: {action: exec}, process: {name: wget}}\n'));
    const r = await runHades(['rules', 'test', '--json', p]);
    assert.equal(r.status, 1);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      files: string[];
      summary: { rules: number; not_loaded: number; samples: number; passed: number; failed: number; invalid: number; errors: number; warnings: number };
      problems: { code: string; severity: string; line: number; rule: string }[];
      rules: { rule: string; status: string; results: { expect: string; reason: string }[] }[];
    };
    assert.equal(out.ok, false);
    assert.deepEqual(out.files, [p]);
    assert.deepEqual(out.summary, { rules: 1, not_loaded: 0, samples: 1, passed: 0, failed: 1, invalid: 0, errors: 1, warnings: 1 });
    assert.deepEqual(
      out.problems.map((x) => [x.code, x.severity, x.rule]),
      [
        ['HADES_ERR_RULE_SAMPLE_MISSING', 'warning', 'curl_exec'],
        ['HADES_ERR_RULE_SAMPLE_FAILED', 'error', 'curl_exec'],
      ],
    );
    assert.deepEqual(out.rules, [{ rule: 'curl_exec', file: p, line: 7, status: 'failed', samples: 1, passed: 0, failed: 1, invalid: 0, results: [{ rule: 'curl_exec', expect: 'match', index: 0, file: p, line: 9, column: 11, outcome: 'failed', reason: 'expected a match, got none', firedAt: [] }] }]);
  });

  it('refuses a path that does not exist with a coded error', async () => {
    const r = await runHades(['rules', 'test', path.join(dir, 'missing.yaml')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^hades: HADES_ERR_RULE_PACK_READ: cannot read .*missing\.yaml: ENOENT\n$/);
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const e = await runHades(['rules', 'test', empty]);
    assert.equal(e.status, 2);
    assert.match(e.stderr, /HADES_ERR_RULE_PACK_READ: .*holds no \.yaml or \.yml file/);
  });

  it('follows symbolic links to rule files and folders in a folder', async () => {
    const target = file('linked/real.yaml', passing);
    const links = path.join(dir, 'links');
    mkdirSync(links);
    symlinkSync(target, path.join(links, 'one.yaml'));
    symlinkSync(path.dirname(target), path.join(links, 'folder'));
    symlinkSync(path.join(dir, 'nowhere.yaml'), path.join(links, 'dangling.yaml'));
    const r = await runHades(['rules', 'test', links]);
    // Both links lead to the same file: read twice, its rule's id repeats.
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /links\/one\.yaml:.*HADES_ERR_RULE_DUPLICATE_ID: rule 'curl_exec' is already defined at .*links\/folder\/real\.yaml/);
    const only = path.join(dir, 'only-link');
    mkdirSync(only);
    symlinkSync(target, path.join(only, 'a.yaml'));
    const ok = await runHades(['rules', 'test', only]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^1 file, 1 rule; 2 samples: 2 passed/);
  });

  it('reads each folder once when links loop back up the tree', async () => {
    const loop = path.join(dir, 'loop');
    file('loop/one.yaml', passing);
    symlinkSync('.', path.join(loop, 'a'));
    symlinkSync('.', path.join(loop, 'b'));
    symlinkSync(loop, path.join(loop, 'c'));
    const r = await runHades(['rules', 'test', loop]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^1 file, 1 rule; 2 samples: 2 passed/);
  });

  it('refuses a FIFO or a device named as a rule file rather than hang or fill the memory', async () => {
    const fifo = path.join(dir, 'pipe.yaml');
    execFileSync('mkfifo', [fifo]);
    for (const p of [fifo, '/dev/zero']) {
      const r = await runHades(['rules', 'test', p], { timeoutMs: 10_000 });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^hades: HADES_ERR_RULE_PACK_READ: .* is not a regular file\n$/);
    }
  });
});
