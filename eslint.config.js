const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: ['./tsconfig.check.json'], tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: "CallExpression[callee.property.name=/^(only|skip)$/][callee.object.name=/^(it|test|describe)$/]", message: 'No focused or skipped tests.' }],
    },
  },
  // Invariant 8: the control room and the runner share only @orderly/shared.
  { files: ['control-room/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: ['@orderly/runner', '@orderly/runner/*', '**/runner/src/**'] }] } },
  { files: ['runner/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: ['@orderly/control-room', '@orderly/control-room/*', '**/control-room/src/**'] }] } },
  // Only the config modules read the environment.
  { files: ['**/*.ts'], ignores: ['**/config.ts', '**/config/*.ts', '**/*.test.ts', '**/testing/**', 'test/**', 'bench/**'], rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through the zod config of the process.' }] } },
);
