/**
 * Renders docs/tables.md from the table specs: `npm run docs` writes it and a test fails when the
 * committed file differs, so the reference cannot drift from the tables.
 */
import type { TableSpec } from './table.js';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderTablesDoc(tables: readonly TableSpec[]): string {
  const out: string[] = [];
  out.push('# Inventory tables');
  out.push('');
  out.push('<!-- Generated from the table specs in src/agent/inventory/tables/ by `npm run docs`; do not edit. -->');
  out.push('');
  out.push('What is installed, configured and running on a host, as SQL tables (SQLite dialect). Run a');
  out.push('query on the host with `hades query "SELECT ..."` (`--json` for NDJSON, `--tables` for this');
  out.push('list), across the fleet with `hades fleet query` (a `query` task per agent, docs/plugins.md;');
  out.push('the answers come a page of hosts at a time), or on a schedule with');
  out.push('`plugins.inventory.queries`, whose changes arrive as `inventory_change` events (docs/events.md).');
  out.push('');
  out.push('A table is collected only when a query reads it, once per query, into a temporary table');
  out.push('(joins do not collect it again). Queries are read-only and bounded by a timeout, a row');
  out.push('limit and a byte limit (the rows as JSON, counted in UTF-8 bytes). Anything a table cannot');
  out.push('read (an unreadable folder, an odd line, a file over the size limit) is skipped with a warning');
  out.push('and the rest is returned. Booleans are INTEGER 0 or 1; times are unix seconds. In results,');
  out.push('blobs are hex text, and an integer beyond 2^53 (9007199254740992) is text holding its exact');
  out.push('digits, since a JSON number would round it; a single value larger than the byte limit cuts');
  out.push('the result there.');
  out.push('');
  out.push('File names are bytes on Linux, and a name need not be UTF-8. The tables list folders with');
  out.push('names as bytes and read each file by its own name, so a file cannot hide from a table by a');
  out.push('name that is not UTF-8. A path written in a file is kept by its bytes the same way: a home');
  out.push('in /etc/passwd (shell_history, authorized_keys and the other tables that read homes), a');
  out.push('library in /etc/ld.so.preload, a file a sudoers or sshd_config include names. So is what');
  out.push('/proc says of a process: the executable, working folder and root it links to, its arguments,');
  out.push('a unix socket\'s path. In a result (and in a warning\'s path) each byte of a name that is not');
  out.push('UTF-8 shows as U+FFFD, since SQLite text is UTF-8; so does such a byte in the text of a file.');
  out.push('A path shows the same in every table (one U+FFFD per such byte), so a program run from a');
  out.push('folder so named joins on its path: `processes.path` with `suid_binaries.path`, say.');
  out.push('');
  out.push('`hades query` runs the collector as a process of its own, which the host\'s agent watches like');
  out.push('any other: a query that reads `users` opens /etc/shadow (for the password state), and the');
  out.push('default pack reports that as `shadow_read_by_unexpected_program` (high). The agent leaves');
  out.push('out only its own collector (its fleet `query` tasks and scheduled queries): a program known');
  out.push('by its path or arguments alone would be an easy disguise for a hash dump. Where the alert is');
  out.push('not wanted, ask through the server (`hades fleet query`), or suppress the rule for the host');
  out.push('while you work (`hades alerts suppress`).');
  out.push('');
  out.push('| table | description |');
  out.push('|---|---|');
  for (const table of tables) out.push(`| [\`${table.name}\`](#${table.name}) | ${cell(table.description)} |`);
  for (const table of tables) {
    out.push('');
    out.push(`## ${table.name}`);
    out.push('');
    out.push(table.description);
    out.push('');
    out.push('| column | type | description |');
    out.push('|---|---|---|');
    for (const column of table.columns) out.push(`| \`${column.name}\` | ${column.type}${column.nullable ? ' (or NULL)' : ''} | ${cell(column.description)} |`);
    out.push('');
    out.push('Examples:');
    for (const example of table.examples) {
      out.push('');
      out.push(`${example.description}`);
      out.push('');
      out.push('```sql');
      out.push(example.sql);
      out.push('```');
    }
  }
  out.push('');
  return out.join('\n');
}
