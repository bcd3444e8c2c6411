import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { errorCatalog, HadesError, isErrorCode, toHadesError } from '../../src/common/errors.js';
import { renderErrorsDoc } from '../../src/common/docs.js';
import { projectRoot } from '../helpers/generated-docs.js';

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'build' || name.startsWith('.')) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) sourceFiles(full, out);
    else if (/\.(ts|js|mjs|c|h)$/.test(name)) out.push(full);
  }
  return out;
}

describe('error catalogue', () => {
  it('documents every code in docs/errors.md, and the file is up to date', () => {
    const doc = readFileSync(path.join(projectRoot, 'docs/errors.md'), 'utf8');
    for (const code of Object.keys(errorCatalog)) assert.ok(doc.includes(`\`${code}\``), `${code} is missing from docs/errors.md`);
    assert.equal(doc, renderErrorsDoc(), 'docs/errors.md is stale: run `npm run docs`');
  });

  it('defines every HADES_ERR_* code that the sources use', () => {
    const used = new Set<string>();
    for (const dir of ['src', 'scripts', 'bin', 'tools', 'driver', 'bench']) {
      const full = path.join(projectRoot, dir);
      try {
        statSync(full);
      } catch {
        continue;
      }
      for (const file of sourceFiles(full)) {
        for (const match of readFileSync(file, 'utf8').matchAll(/HADES_ERR_[A-Z0-9_]*[A-Z0-9]/g)) used.add(match[0]);
      }
    }
    const undefinedCodes = [...used].filter((c) => !isErrorCode(c));
    assert.deepEqual(undefinedCodes, [], 'codes used but not in src/common/errors.ts');
  });

  it('keeps kinds apart and gives every code a summary and a remedy', () => {
    for (const [code, spec] of Object.entries(errorCatalog)) {
      assert.match(code, /^HADES_ERR_[A-Z0-9_]+$/);
      assert.ok(['input', 'environment', 'bug'].includes(spec.kind), code);
      assert.ok(spec.summary.endsWith('.') && spec.remedy.endsWith('.'), `${code} needs full sentences`);
    }
  });

  it('renders a one-line form and wraps foreign errors as bugs', () => {
    const e = new HadesError('HADES_ERR_CONFIG_INVALID', 'a.yaml has 2 problems:\n  one\n  two');
    assert.equal(e.kind, 'input');
    assert.equal(e.toLine(), 'HADES_ERR_CONFIG_INVALID: a.yaml has 2 problems:; one; two');
    assert.ok(!e.toLine().includes('\n'));
    const wrapped = toHadesError(new TypeError('x is undefined'));
    assert.equal(wrapped.code, 'HADES_ERR_INTERNAL');
    assert.equal(wrapped.kind, 'bug');
    assert.equal(toHadesError(e), e);
  });

  it('says running out of file descriptors (EMFILE, ENFILE) as the machine\'s limit, with how to raise it, not as a bug', () => {
    const emfile = toHadesError(Object.assign(new Error("EMFILE: too many open files, open 'a.js'"), { code: 'EMFILE', errno: -24 }));
    assert.deepEqual([emfile.code, emfile.kind, emfile.details], ['HADES_ERR_FD_LIMIT', 'environment', { errno: 'EMFILE' }]);
    assert.match(emfile.message, /limit of open files of this process is reached: raise it with `ulimit -n` or LimitNOFILE/);
    assert.equal(toHadesError(Object.assign(new Error('ENFILE'), { code: 'ENFILE' })).code, 'HADES_ERR_FD_LIMIT');
  });

  it("says SQLite's failures of the disk, the file or a lock as the database's (environment), not as bugs", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hades-errors-'));
    try {
      const file = path.join(dir, 'damaged.db');
      writeFileSync(file, Buffer.alloc(8192, 7));
      let caught: unknown;
      try {
        new Database(file).prepare('SELECT 1 FROM sqlite_schema').all();
      } catch (error) {
        caught = error;
      }
      const damaged = toHadesError(caught);
      assert.deepEqual([damaged.code, damaged.kind, damaged.details], ['HADES_ERR_DATABASE', 'environment', { sqlite: 'SQLITE_NOTADB' }]);
      assert.match(damaged.message, /damaged: restore it from a backup/);
      const full = toHadesError(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
      assert.equal(full.code, 'HADES_ERR_DATABASE');
      assert.match(full.message, /no room left/);
      // A statement of ours that SQLite refuses is still a bug.
      assert.equal(toHadesError(Object.assign(new Error('no such column: x'), { code: 'SQLITE_ERROR' })).code, 'HADES_ERR_INTERNAL');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
