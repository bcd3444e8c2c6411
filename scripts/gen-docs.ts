// Writes the generated reference docs (docs/events.md, docs/errors.md). Run with `npm run docs`.
import { writeFileSync } from 'node:fs';
import { generatedDocs } from '../test/helpers/generated-docs.js';

for (const doc of generatedDocs) {
  writeFileSync(doc.file, doc.render());
  process.stdout.write(`wrote ${doc.file}\n`);
}
