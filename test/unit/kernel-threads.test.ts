/**
 * The kernel thread names the agent's disguised_processes query looks for: the same as the rule
 * pack's lists, turned into SQL that takes them literally, and scheduled by default.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_INVENTORY_QUERIES } from '../../src/common/config/agent.js';
import { DISGUISED_PROCESSES_SQL, KERNEL_THREAD_NAMES, KERNEL_THREAD_PREFIXES } from '../../src/common/kernel-threads.js';
import { agentConfig } from '../helpers/agent.js';
import { projectRoot } from '../helpers/generated-docs.js';

describe('kernel thread names', () => {
  it('are the rule pack\'s kernel_thread_names and kernel_thread_prefixes lists', () => {
    const pack = parse(readFileSync(`${projectRoot}rules/evasion.yaml`, 'utf8')) as { lists: Record<string, string[]> };
    assert.deepEqual(pack.lists['kernel_thread_names'], [...KERNEL_THREAD_NAMES]);
    assert.deepEqual(pack.lists['kernel_thread_prefixes'], [...KERNEL_THREAD_PREFIXES]);
    // comm is cut at 15 characters: a longer name could never match.
    assert.deepEqual(KERNEL_THREAD_NAMES.filter((n) => n.length > 15), []);
  });

  it('become GLOB patterns that take `[` and `_` literally, for the name and for argv[0]', () => {
    for (const column of ['name', 'argv0']) {
      assert.ok(DISGUISED_PROCESSES_SQL.includes(`${column} GLOB '[[]*'`), column);
      assert.ok(DISGUISED_PROCESSES_SQL.includes(`${column} GLOB 'kworker/*'`), column);
      assert.ok(DISGUISED_PROCESSES_SQL.includes(`${column} GLOB 'rcu_*'`), column);
      assert.ok(DISGUISED_PROCESSES_SQL.includes(`${column} IN ('kthreadd', `), column);
    }
    assert.ok(!/ LIKE /i.test(DISGUISED_PROCESSES_SQL), 'LIKE would take _ as any character and ignore case');
    assert.ok(DISGUISED_PROCESSES_SQL.includes('WHERE path IS NOT NULL'), 'kernel threads (no executable) are left out');
  });

  it('are looked for by a default scheduled query, every 5 minutes', () => {
    const query = DEFAULT_INVENTORY_QUERIES.find((q) => q.name === 'disguised_processes');
    assert.deepEqual(query, { name: 'disguised_processes', sql: DISGUISED_PROCESSES_SQL, interval_s: 300 });
    const config = agentConfig('{}');
    assert.ok(config.plugins.inventory.queries.some((q) => q.name === 'disguised_processes' && q.sql === DISGUISED_PROCESSES_SQL));
  });
});
