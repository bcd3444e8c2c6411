// hades-test: shares the machine (it lints strings in memory)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { projectRoot } from '../helpers/generated-docs.js';

interface LayerConfigModule {
  readonly layerRules: Record<string, { may: string[]; node: boolean }>;
}
// eslint.config.js is plain JavaScript at the project root.
const config = (await import(`${projectRoot}eslint.config.js`)) as LayerConfigModule;
const plugin = ((await import(`${projectRoot}tools/eslint-plugin-layers.js`)) as { default: ESLint.Plugin }).default;

/** Lints one import as if written in a file of the given layer, with the project's layer table. */
async function lintImport(file: string, source: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: projectRoot,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { layers: plugin },
        rules: { 'layers/imports': ['error', { root: projectRoot, layers: config.layerRules }] },
      },
    ],
  });
  const [result] = await eslint.lintText(`${source}\nexport const used = 1;\n`, { filePath: `${projectRoot}${file}` });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('layer rule', () => {
  it('rejects the agent importing the server', async () => {
    const messages = await lintImport('src/agent/spool.ts', "import { x } from '../server/store.js';");
    assert.equal(messages.length, 1);
    assert.match(messages[0] ?? '', /layers\/imports: layer 'agent' must not import layer 'server'/);
  });

  it('rejects the server importing the agent, however the path is spelt', async () => {
    const messages = await lintImport('src/server/api/routes.ts', "export * from '../../agent/../agent/tree.js';");
    assert.match(messages.join('\n'), /layer 'server' must not import layer 'agent'/);
  });

  it('rejects shared code importing any other layer, also dynamically', async () => {
    const messages = await lintImport('src/common/events/x.ts', "const m = await import('../../rules/engine.js');");
    assert.match(messages.join('\n'), /layer 'common' must not import layer 'rules'/);
  });

  it('rejects Node APIs in the pure layers', async () => {
    for (const file of ['src/common/codec.ts', 'src/rules/engine.ts']) {
      assert.match((await lintImport(file, "import { readFileSync } from 'node:fs';")).join('\n'), /must not use Node APIs/);
      assert.match((await lintImport(file, "import * as path from 'path';")).join('\n'), /must not use Node APIs/);
    }
  });

  it('rejects the rule engine importing the agent', async () => {
    assert.match((await lintImport('src/rules/engine.ts', "import '../agent/x.js';")).join('\n'), /layer 'rules' must not import layer 'agent'/);
  });

  it('allows what the architecture allows', async () => {
    assert.deepEqual(await lintImport('src/agent/x.ts', "import { HadesError } from '../common/errors.js';\nimport { readFileSync } from 'node:fs';"), []);
    assert.deepEqual(await lintImport('src/server/x.ts', "import { y } from '../rules/y.js';"), []);
    assert.deepEqual(await lintImport('src/cli/x.ts', "import '../agent/a.js';\nimport '../server/s.js';"), []);
    assert.deepEqual(await lintImport('src/common/x.ts', "import { Type } from '@sinclair/typebox';\nimport { y } from './events/y.js';"), []);
  });

  it('is switched on for every file under src/ by the project configuration', async () => {
    const eslint = new ESLint({ cwd: projectRoot });
    for (const file of ['src/common/errors.ts', 'src/agent/x.ts', 'src/server/x.ts', 'src/rules/x.ts', 'src/cli/main.ts']) {
      const resolved = (await eslint.calculateConfigForFile(`${projectRoot}${file}`)) as { rules: Record<string, unknown[]> };
      const rule = resolved.rules['layers/imports'];
      assert.ok(rule, `layers/imports is active for ${file}`);
      assert.equal(rule[0], 2);
    }
  });
});
