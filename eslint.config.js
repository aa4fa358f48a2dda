const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

// One `no-restricted-imports` per file: a later config's rule replaces an earlier one's, so each
// file set names every group it must not import.
const NOT_RUNNER = { group: ['@orderly/runner', '@orderly/runner/*', '**/runner/src/**'], message: 'The control room and the runner share only @orderly/shared.' };
const NOT_CONTROL_ROOM = { group: ['@orderly/control-room', '@orderly/control-room/*', '**/control-room/src/**'], message: 'The control room and the runner share only @orderly/shared.' };
const NOT_DEV_TOOLS = [
  { group: ['@orderly/dev-vault', '@orderly/dev-vault/*', '**/dev-vault/src/**'], message: 'The dev Vault is a development tool: production code talks to a real Vault.' },
  { group: ['@orderly/shared/testing', '**/testing', '**/testing/**'], message: 'Test helpers are for tests only.' },
];
// The CLI is a client of the HTTP API: outside its own folder it imports only @orderly/shared (whose
// api/ modules are the contract). `control-room serve` and `backup` load the server lazily (dynamic
// imports, which this rule does not see). Two depths, because a relative path says how far it climbs.
const CLI_ONLY = 'The CLI is a client of the HTTP API: it imports only @orderly/shared and its own files (control-room/src/cli/).';
const NOT_SERVER_FROM_CLI = { group: ['@orderly/control-room', '@orderly/control-room/*', '../*', '../**'], message: CLI_ONLY };
const NOT_SERVER_FROM_CLI_COMMANDS = { group: ['@orderly/control-room', '@orderly/control-room/*', '../../*', '../../**'], message: CLI_ONLY };
// CLI files that still import a server module (issue 13 item 3, left: the identity schemas need
// the role table, the audit and compliance helpers need their modules split). This list only shrinks.
const CLI_STILL_IMPORTING_SERVER = [
  'control-room/src/cli/config.ts',
  'control-room/src/cli/commands/access.ts',
  'control-room/src/cli/commands/audit.ts',
  'control-room/src/cli/commands/backup.ts',
  'control-room/src/cli/commands/bot.ts',
  'control-room/src/cli/commands/compliance.ts',
  'control-room/src/cli/commands/login.ts',
  'control-room/src/cli/commands/runners.ts',
  'control-room/src/cli/commands/service-accounts.ts',
  'control-room/src/cli/commands/teams.ts',
  'control-room/src/cli/sso-login.ts',
  'control-room/src/cli/commands/tokens.ts',
  'control-room/src/cli/commands/users.ts',
];
const restrictImports = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

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
  { files: ['control-room/**/*.ts'], rules: restrictImports(NOT_RUNNER) },
  { files: ['runner/**/*.ts'], rules: restrictImports(NOT_CONTROL_ROOM) },
  // Development tools (the dev Vault, the test helpers) are never imported by production code. The
  // one dev command that starts the dev Vault loads it lazily (a dynamic import, which this rule
  // does not see), and says so when a production install lacks it.
  { files: ['control-room/src/**/*.ts'], ignores: ['**/*.test.ts'], rules: restrictImports(NOT_RUNNER, ...NOT_DEV_TOOLS) },
  { files: ['runner/src/**/*.ts'], ignores: ['**/*.test.ts'], rules: restrictImports(NOT_CONTROL_ROOM, ...NOT_DEV_TOOLS) },
  { files: ['control-room/src/cli/*.ts'], ignores: ['**/*.test.ts', ...CLI_STILL_IMPORTING_SERVER], rules: restrictImports(NOT_RUNNER, ...NOT_DEV_TOOLS, NOT_SERVER_FROM_CLI) },
  { files: ['control-room/src/cli/commands/*.ts'], ignores: ['**/*.test.ts', ...CLI_STILL_IMPORTING_SERVER], rules: restrictImports(NOT_RUNNER, ...NOT_DEV_TOOLS, NOT_SERVER_FROM_CLI_COMMANDS) },
  { files: ['shared/src/**/*.ts', 'bots/*/src/**/*.ts'], ignores: ['**/*.test.ts', 'shared/src/testing/**'], rules: restrictImports(...NOT_DEV_TOOLS) },
  // Only the config modules read the environment.
  { files: ['**/*.ts'], ignores: ['**/config.ts', '**/config/*.ts', '**/*.test.ts', '**/testing/**', 'test/**', 'bench/**'], rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through the zod config of the process.' }] } },
);
