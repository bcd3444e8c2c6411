// ESLint rule `layers/imports`: enforces which layers of src/ may import which.
// It resolves relative specifiers against the importing file, so `../../server/x.js` from
// src/agent is caught whatever its spelling, without a module resolver plugin.
import { builtinModules } from 'node:module';
import path from 'node:path';

const builtins = new Set(builtinModules);

function isBuiltin(spec) {
  return spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]);
}

/** @type {import('eslint').Rule.RuleModule} */
const imports = {
  meta: {
    type: 'problem',
    docs: { description: 'Keep the layers of src/ apart (see docs/architecture.md).' },
    schema: [
      {
        type: 'object',
        properties: {
          root: { type: 'string' },
          layers: { type: 'object' },
        },
        required: ['root', 'layers'],
        additionalProperties: false,
      },
    ],
    messages: {
      forbidden: "layer '{{from}}' must not import layer '{{to}}' ({{spec}}); allowed: {{allowed}}",
      builtin: "layer '{{from}}' must not use Node APIs ({{spec}}): it runs anywhere, without I/O",
      outside: "layer '{{from}}' must not import code outside src/ ({{spec}})",
    },
  },
  create(context) {
    const { root, layers } = context.options[0];
    const layerOf = (file) => {
      const rel = path.relative(path.resolve(root), file).split(path.sep);
      return rel[0] === 'src' && rel.length > 2 ? rel[1] : undefined;
    };
    const from = layerOf(context.filename);
    const rules = from === undefined ? undefined : layers[from];
    if (!rules) return {};
    const check = (node) => {
      const spec = node.source && node.source.type === 'Literal' ? node.source.value : undefined;
      if (typeof spec !== 'string') return;
      if (isBuiltin(spec)) {
        if (rules.node === false) context.report({ node, messageId: 'builtin', data: { from, spec } });
        return;
      }
      if (!spec.startsWith('.')) return; // a dependency from node_modules
      const target = path.resolve(path.dirname(context.filename), spec);
      const to = layerOf(target);
      if (to === undefined) {
        context.report({ node, messageId: 'outside', data: { from, spec } });
      } else if (to !== from && !rules.may.includes(to)) {
        context.report({ node, messageId: 'forbidden', data: { from, to, spec, allowed: rules.may.join(', ') || 'none' } });
      }
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default { meta: { name: 'layers' }, rules: { imports } };
