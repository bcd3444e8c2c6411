// hades-test: shares the machine
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { formatProblem, loadRules } from '../../src/rules/index.js';
import { execFileSync } from 'node:child_process';
import { runHades } from '../helpers/cli.js';
import { projectRoot } from '../helpers/generated-docs.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hades-sigma-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SIGMA = path.join(projectRoot, 'third_party/sigma');

function files(root: string): string[] {
  return readdirSync(root).flatMap((n) => {
    const p = path.join(root, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const GOOD = `title: Netcat listener
id: 0d5c8c5e-1a4b-4c1e-9a51-3b7d2f9e6a01
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '/nc'
        CommandLine|contains: ' -l'
    condition: selection
level: medium
`;

describe('hades rules import-sigma', () => {
  it('imports SigmaHQ\'s Linux rules: per-rule reasons, a summary per category, exit 0', async () => {
    const r = await runHades(['rules', 'import-sigma', SIGMA]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^rules\/linux\/auditd\/\S+\.yml: unsupported HADES_ERR_SIGMA_LOGSOURCE: .*service 'auditd'/m);
    assert.match(r.stdout, /^category\s+loaded\s+unsupported$/m);
    assert.match(r.stdout, /^process_creation\s+\d+\s+\d+$/m);
    assert.match(r.stdout, /^total\s+\d+\s+\d+$/m);
    assert.match(r.stdout, /HADES_ERR_SIGMA_LOGSOURCE \(service: auditd\)/);
  });

  it('--json prints the report; --out writes Hades rule files that load, each naming its source and licence', async () => {
    const out = path.join(dir, 'out');
    const r = await runHades(['rules', 'import-sigma', SIGMA, '--json', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.match(report.licence, /Detection Rule License \(DRL\) 1\.1/);
    const pc = report.summary.categories.process_creation;
    assert.ok(pc.loaded / (pc.loaded + pc.unsupported) >= 0.9);
    assert.equal(report.rules.length, report.summary.total);
    const written = files(out);
    assert.deepEqual([...written].sort(), [...report.written].sort());
    const loadedFiles = new Set(report.rules.filter((e: { status: string }) => e.status === 'loaded').map((e: { file: string }) => e.file));
    assert.equal(written.length, loadedFiles.size, 'one file per Sigma file with a rule loaded');
    const sample = readFileSync(path.join(out, 'rules/linux/process_creation/proc_creation_lnx_susp_curl_fileupload.yaml'), 'utf8');
    assert.match(sample, /^# Hades rules converted from the Sigma rule file rules\/linux\/process_creation\/proc_creation_lnx_susp_curl_fileupload\.yml/);
    assert.match(sample, /^# Licence of the Sigma rules: Detection Rule License \(DRL\) 1\.1/m);
    const { ruleSet, problems } = loadRules(written.map((f) => ({ name: f, text: readFileSync(f, 'utf8') })));
    assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
    assert.equal(ruleSet.rules.length, report.summary.loaded);
  });

  it('reports bad files with codes and goes on; non-YAML files are not read', async () => {
    const input = path.join(dir, 'mixed');
    mkdirSync(path.join(input, 'sub'), { recursive: true });
    writeFileSync(path.join(input, 'good.yml'), GOOD);
    writeFileSync(path.join(input, 'broken.yml'), 'title: [unclosed\n');
    writeFileSync(path.join(input, 'sub', 'config.yaml'), 'server:\n  port: 80\n');
    writeFileSync(path.join(input, 'sub', 'windows.yml'), GOOD.replace('product: linux', 'product: windows').replace('0d5c8c5e', '1d5c8c5e'));
    writeFileSync(path.join(input, 'notes.txt'), 'not a rule');
    // Saved as Latin-1: refused with where, rather than read with U+FFFD in its values.
    writeFileSync(path.join(input, 'latin1.yml'), Buffer.concat([Buffer.from(GOOD.replace('0d5c8c5e', '2d5c8c5e')), Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    // A pipe named like a rule: reported, never opened (reading it would wait for a writer).
    execFileSync('mkfifo', [path.join(input, 'pipe.yml')]);
    const r = await runHades(['rules', 'import-sigma', input, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(
      report.rules.map((e: { file: string; status: string; reasons: { code: string }[] }) => [e.file, e.status, e.reasons[0]?.code]),
      [
        ['broken.yml', 'unsupported', 'HADES_ERR_SIGMA_YAML'],
        ['good.yml', 'loaded', undefined],
        ['latin1.yml', 'unsupported', 'HADES_ERR_SIGMA_READ'],
        ['pipe.yml', 'unsupported', 'HADES_ERR_SIGMA_READ'],
        ['sub/config.yaml', 'unsupported', 'HADES_ERR_SIGMA_NOT_SIGMA'],
        ['sub/windows.yml', 'unsupported', 'HADES_ERR_SIGMA_LOGSOURCE'],
      ],
    );
    const text = await runHades(['rules', 'import-sigma', input]);
    assert.equal(text.status, 0);
    assert.match(text.stdout, /^broken\.yml: unsupported HADES_ERR_SIGMA_YAML: not valid YAML at line \d+, column \d+: /m);
    assert.match(text.stdout, /^latin1\.yml: unsupported HADES_ERR_SIGMA_READ: cannot read latin1\.yml: line \d+, column 6: byte 0xE9 is not UTF-8 text/m);
    assert.match(text.stdout, /1 of 6 Sigma rule\(s\) convert/);
  });

  it('says where in the file the field, search identifier or correlation key that cannot be converted is written', async () => {
    const input = path.join(dir, 'positions');
    mkdirSync(input, { recursive: true });
    // A field with a modifier Sigma does not define, in the second mapping of a list, and a
    // search identifier of keywords.
    const text = [
      'title: Netcat listener',
      'id: 2d5c8c5e-1a4b-4c1e-9a51-3b7d2f9e6a01',
      'logsource:',
      '    product: linux',
      '    category: process_creation',
      'detection:',
      '    selection:',
      "        - Image|endswith: '/nc'",
      "        - CommandLine|contains: ' -l'",
      '          Hashes|xyz: abc',
      '    keywords:',
      "        - 'nc -e'",
      '    condition: selection or keywords',
      'level: medium',
      '',
    ].join('\n');
    writeFileSync(path.join(input, 'bad.yml'), text);
    const lines = text.split('\n');
    const r = await runHades(['rules', 'import-sigma', input]);
    assert.equal(r.status, 0, r.stderr);
    const hashes = lines.findIndex((l) => l.includes('Hashes|xyz')) + 1;
    const keywords = lines.findIndex((l) => l.includes('keywords:')) + 1;
    assert.match(r.stdout, new RegExp(`^bad\\.yml:${hashes}:11: unsupported HADES_ERR_SIGMA_MODIFIER: 'Hashes' has the modifier 'xyz'`, 'm'));
    assert.match(r.stdout, new RegExp(`^bad\\.yml:${keywords}:5: unsupported HADES_ERR_SIGMA_KEYWORDS: `, 'm'));
    // A correlation: the key its reason is about (the rules it names, its timespan).
    writeFileSync(path.join(input, 'corr.yml'), ['title: Burst', 'id: 3d5c8c5e-1a4b-4c1e-9a51-3b7d2f9e6a01', 'correlation:', '    type: event_count', '    rules:', '        - no-such-rule', '    timespan: 5x', '    condition:', '        gte: 10', ''].join('\n'));
    const withCorrelation = await runHades(['rules', 'import-sigma', input]);
    assert.match(withCorrelation.stdout, /^corr\.yml:5:5: unsupported HADES_ERR_SIGMA_REFERENCE: the correlation names 'no-such-rule'/m);
    assert.match(withCorrelation.stdout, /^corr\.yml:7:5: unsupported HADES_ERR_SIGMA_INVALID: 'correlation\.timespan'/m);
    const json = JSON.parse((await runHades(['rules', 'import-sigma', input, '--json'])).stdout);
    const reasons = json.rules.find((e: { file: string }) => e.file === 'bad.yml').reasons as { code: string; line?: number; column?: number }[];
    assert.deepEqual(reasons.find((x) => x.code === 'HADES_ERR_SIGMA_MODIFIER'), { code: 'HADES_ERR_SIGMA_MODIFIER', detail: 'xyz', message: reasons.find((x) => x.code === 'HADES_ERR_SIGMA_MODIFIER')?.['message' as never], line: hashes, column: 11 });
  });

  it('fails with a code for a missing folder, a file given as folder, and an --out it cannot write', async () => {
    const missing = await runHades(['rules', 'import-sigma', path.join(dir, 'nope')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /^hades: HADES_ERR_SIGMA_NOT_FOUND: .*does not exist/m);
    const file = path.join(dir, 'file.yml');
    writeFileSync(file, GOOD);
    const notDir = await runHades(['rules', 'import-sigma', file]);
    assert.equal(notDir.status, 2);
    assert.match(notDir.stderr, /^hades: HADES_ERR_SIGMA_NOT_FOUND: .*not a folder/m);
    const input = path.join(dir, 'one');
    mkdirSync(input);
    writeFileSync(path.join(input, 'good.yml'), GOOD);
    const blocked = await runHades(['rules', 'import-sigma', input, '--out', path.join(file, 'out')]);
    assert.equal(blocked.status, 3);
    assert.match(blocked.stderr, /^hades: HADES_ERR_SIGMA_WRITE: /m);
    // The Sigma folder itself, or a folder inside it: the sources would be replaced.
    symlinkSync(input, path.join(dir, 'link-to-input'));
    for (const out of [input, path.join(input, 'converted'), path.join(dir, 'link-to-input', 'new')]) {
      const r = await runHades(['rules', 'import-sigma', input, '--out', out]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^hades: HADES_ERR_CLI_INVALID_ARGUMENT: --out .* (the Sigma folder itself|inside the Sigma folder)/m);
    }
    assert.equal(readFileSync(path.join(input, 'good.yml'), 'utf8'), GOOD, 'the source is untouched');
    // a.yml and a.yaml would be written to one file: refused before anything is written.
    writeFileSync(path.join(input, 'good.yaml'), GOOD.replace(/^id: .*$/m, 'id: 0b2b2d5c-1111-4c1f-9a55-0123456789ab'));
    const out = path.join(dir, 'two-out');
    const clash = await runHades(['rules', 'import-sigma', input, '--out', out]);
    assert.equal(clash.status, 3, clash.stderr);
    assert.match(clash.stderr, /^hades: HADES_ERR_SIGMA_WRITE: good\.ya?ml and good\.ya?ml would both be written to .*good\.yaml; rename one of them/m);
    assert.ok(!existsSync(out), 'nothing written');
  });
});
