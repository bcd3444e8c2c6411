/**
 * Every table spec (host and software alike): names, columns and examples well formed, every
 * example valid read-only SQL against the tables' schema (run here on empty tables; the
 * integration test runs them on the real host), and docs/tables.md generated from the specs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderTablesDoc } from '../../src/agent/inventory/docs.js';
import { InventoryEngine } from '../../src/agent/inventory/engine.js';
import { allTables } from '../../src/agent/inventory/tables/index.js';
import { INVENTORY_TABLES } from '../../src/common/inventory-tables.js';
import { projectRoot } from '../helpers/generated-docs.js';

describe('inventory table specs', () => {
  it('are the tables the server knows by name (src/common/inventory-tables.ts), in the same order', () => {
    // The server refuses inventory tasks by this list: a table added to the agent must be added there.
    assert.deepEqual(
      allTables.map((t) => t.name),
      [...INVENTORY_TABLES],
    );
  });

  it('have unique snake_case names, described and typed columns, and examples', () => {
    const names = new Set<string>();
    for (const table of allTables) {
      assert.match(table.name, /^[a-z][a-z0-9_]*$/, table.name);
      assert.ok(!names.has(table.name), `${table.name} twice`);
      names.add(table.name);
      assert.ok(table.description.length > 10, `${table.name}: description`);
      assert.ok(table.columns.length > 0, `${table.name}: columns`);
      const columns = new Set<string>();
      for (const c of table.columns) {
        assert.match(c.name, /^[a-z][a-z0-9_]*$/, `${table.name}.${c.name}`);
        assert.ok(!columns.has(c.name), `${table.name}.${c.name} twice`);
        columns.add(c.name);
        assert.ok(['TEXT', 'INTEGER', 'REAL'].includes(c.type), `${table.name}.${c.name}: ${c.type}`);
        assert.ok(c.description.endsWith('.'), `${table.name}.${c.name}: the description is a sentence`);
      }
      assert.ok(table.examples.length > 0, `${table.name}: at least one example`);
    }
  });

  it('have examples that are valid read-only SQL over the tables', async () => {
    const empty = allTables.map((t) => ({ ...t, generate: async () => [] }));
    const engine = new InventoryEngine(empty);
    try {
      for (const table of allTables) {
        for (const example of table.examples) {
          const result = await engine.query(example.sql, { timeoutMs: 10_000 });
          assert.ok(result.tables.includes(table.name), `${table.name}: the example "${example.sql}" reads the table`);
        }
      }
    } finally {
      engine.close();
    }
  });

  it('generate docs/tables.md, and the file is up to date', () => {
    const doc = readFileSync(path.join(projectRoot, 'docs/tables.md'), 'utf8');
    for (const table of allTables) {
      assert.ok(doc.includes(`## ${table.name}\n`), table.name);
      for (const c of table.columns) assert.ok(doc.includes(`| \`${c.name}\` |`), `${table.name}.${c.name}`);
    }
    assert.equal(doc, renderTablesDoc(allTables), 'docs/tables.md is stale: run `npm run build && npm run docs`');
  });
});
