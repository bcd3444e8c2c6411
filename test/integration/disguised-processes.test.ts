/**
 * The agent's disguised_processes scheduled query on the real host (root): a program run with a
 * bracketed argv[0] (`exec -a`) and one that renamed itself with prctl(PR_SET_NAME) are found,
 * ordinary processes and kernel threads are not, and the default pack's rule reports each row
 * as the collector sends it (an inventory_change snapshot).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DISGUISED_PROCESSES_SQL, KERNEL_THREAD_NAMES, KERNEL_THREAD_PREFIXES } from '../../src/common/kernel-threads.js';
import { InventoryEngine, rowObjects } from '../../src/agent/inventory/engine.js';
import { allTables } from '../../src/agent/inventory/tables/index.js';
import { loadRules, type LoadResult } from '../../src/rules/index.js';
import { readDefaultPack } from '../../src/runtime/rule-pack.js';
import { waitFor } from '../helpers/agent.js';

const RULE = 'process_disguised_as_kernel_thread_running';
const kernelThreadLike = (value: unknown) => typeof value === 'string' && (KERNEL_THREAD_NAMES.includes(value) || KERNEL_THREAD_PREFIXES.some((p) => value.startsWith(p)));
const procText = (pid: number, file: string): string => {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
};

describe('disguised_processes: programs named like kernel threads on this host', () => {
  const engine = new InventoryEngine(allTables);
  const children: ChildProcess[] = [];
  let pack: LoadResult;
  after(() => {
    for (const child of children) child.kill('SIGKILL');
    engine.close();
  });
  before(async () => {
    pack = loadRules(await readDefaultPack(), { samples: false });
  });

  /** Starts a child and returns its pid once `ready` holds for it. */
  async function start(command: string, args: string[], what: string, ready: (pid: number) => boolean): Promise<number> {
    const child = spawn(command, args, { stdio: 'ignore' });
    children.push(child);
    await once(child, 'spawn');
    await waitFor(what, () => ready(child.pid!));
    return child.pid!;
  }

  it('finds an exec -a "[kworker/0:9]" program and a prctl-renamed one, not ordinary processes, and the rule reports them', async () => {
    const bracketed = await start('bash', ['-c', 'exec -a "[kworker/0:9]" sleep 30'], 'the bracketed sleep', (pid) => procText(pid, 'cmdline') === '[kworker/0:9]\u000030\u0000');
    const renamed = await start('python3', ['-c', 'import ctypes, time\nctypes.CDLL(None).prctl(15, b"kworker/1:2H", 0, 0, 0)\ntime.sleep(30)'], 'the renamed python', (pid) => procText(pid, 'comm') === 'kworker/1:2H\n');
    const ordinary = await start('sleep', ['30'], 'the ordinary sleep', (pid) => procText(pid, 'comm') === 'sleep\n');
    const result = await engine.query(DISGUISED_PROCESSES_SQL, { timeoutMs: 30_000 });
    assert.deepEqual(result.tables, ['processes']);
    const rows = rowObjects(result);
    const byPid = new Map(rows.map((row) => [row['pid'], row]));

    const first = byPid.get(bracketed);
    assert.ok(first, JSON.stringify(rows));
    assert.equal(first['name'], 'sleep');
    assert.equal(first['argv0'], '[kworker/0:9]');
    assert.equal(first['cmdline'], '[kworker/0:9] 30');
    assert.match(String(first['path']), /\/sleep$/);

    const second = byPid.get(renamed);
    assert.ok(second, JSON.stringify(rows));
    assert.equal(second['name'], 'kworker/1:2H');
    assert.match(String(second['path']), /python/);
    assert.match(String(second['argv0']), /python3$/);

    assert.ok(!byPid.has(ordinary), JSON.stringify(rows));
    assert.ok(!byPid.has(process.pid), JSON.stringify(rows));
    // Nothing else but programs that do look like kernel threads (other work on this host may
    // run some): never a kernel thread itself, which has no executable.
    for (const row of rows) {
      assert.equal(typeof row['path'], 'string', JSON.stringify(row));
      assert.ok(kernelThreadLike(row['name']) || kernelThreadLike(row['argv0']), JSON.stringify(row));
    }
    const kernelThread = (await engine.query("SELECT pid FROM processes WHERE path IS NULL AND ppid = 2 AND name GLOB 'kworker/*' LIMIT 1")).rows[0]?.[0];
    assert.equal(typeof kernelThread, 'number', 'this host has kernel threads, and the query left them out');

    // As the collector sends a first result (collector.ts, runScheduled).
    const event = (row: Record<string, unknown>) => ({
      '@timestamp': new Date().toISOString(),
      event: { action: 'inventory_change' },
      hades: { backend: 'inventory', inventory: { table: 'processes', query: 'disguised_processes', change: 'snapshot', row } },
    });
    const fired = (row: Record<string, unknown>) => pack.ruleSet.match(event(row)).some((m) => m.rule.id === RULE);
    assert.equal(fired(first), true);
    assert.equal(fired(second), true);
    const plain = await engine.query(`SELECT pid, name, path, cmdline, uid, user, substr(cmdline, 1, instr(cmdline || ' ', ' ') - 1) AS argv0 FROM processes WHERE pid IN (${ordinary}, ${String(kernelThread)})`);
    const plainRows = rowObjects(plain);
    assert.equal(plainRows.length, 2, JSON.stringify(plainRows));
    for (const row of plainRows) assert.equal(fired(row), false, JSON.stringify(row));
  });
});
