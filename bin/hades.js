#!/usr/bin/env node
// The `hades` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (which `npm start` and `npm test` run through the bootstrap).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('hades: HADES_ERR_BOOTSTRAP_STEP_FAILED: hades is not built yet; run `npm run bootstrap` (or `npm start`) in the project folder first\n');
  process.exit(3);
}
await import(entry.href);
