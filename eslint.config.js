import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import layers from './tools/eslint-plugin-layers.js';

/**
 * The layers of src/ (docs/architecture.md). `may` lists the layers a layer can import;
 * `node: false` forbids Node APIs (the layer is pure and runs anywhere).
 */
export const layerRules = {
  common: { may: [], node: false },
  rules: { may: ['common'], node: false },
  runtime: { may: ['common'], node: true },
  agent: { may: ['common', 'rules', 'runtime'], node: true },
  server: { may: ['common', 'rules', 'runtime'], node: true },
  cli: { may: ['common', 'rules', 'runtime', 'agent', 'server'], node: true },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'driver/**', 'web/dist/**'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Error']", message: 'Throw a HadesError with a HADES_ERR_* code (src/common/errors.ts).' },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { layers },
    rules: { 'layers/imports': ['error', { root: import.meta.dirname, layers: layerRules }] },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    // Tests and benchmarks inspect events as parsed JSON, whose shape they assert themselves.
    rules: {
      'no-restricted-syntax': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
);
