// Writes the generated reference docs (docs/events.md, docs/errors.md, docs/tables.md). Run with `npm run docs`.
import { writeFileSync } from 'node:fs';
import { renderTablesDoc } from '../src/agent/inventory/docs.js';
import { allTables } from '../src/agent/inventory/tables/index.js';
import { generatedDocs, projectRoot } from '../test/helpers/generated-docs.js';

// docs/tables.md is rendered here rather than in the shared list: that list is imported by most
// tests (for projectRoot), and the table modules need not load in all of them.
const docs = [...generatedDocs, { file: `${projectRoot}docs/tables.md`, render: () => renderTablesDoc(allTables) }];

for (const doc of docs) {
  writeFileSync(doc.file, doc.render());
  process.stdout.write(`wrote ${doc.file}\n`);
}
