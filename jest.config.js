// Two projects: `unit` (no services, in-memory fakes of our own ports) and `integration`
// (real Redis, PostgreSQL, Chromium and the dev Vault). Tests run from TypeScript sources;
// `@orderly/shared` is mapped to its sources; what runs from dist (bot hosts, CLIs) is built by the
// integration project's globalSetup (test/global-setup.js).
const common = {
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  moduleNameMapper: {
    '^@orderly/shared(/.*)?$': '<rootDir>/shared/src$1',
    '^@orderly/dev-vault$': '<rootDir>/dev-vault/src/index.ts',
    '^@orderly/control-room$': '<rootDir>/control-room/src/index.ts',
    '^@orderly/runner$': '<rootDir>/runner/src/index.ts',
    '^@orderly/demo-portal$': '<rootDir>/bots/demo-portal/src/index.ts',
  },
  testEnvironment: 'node',
  rootDir: __dirname,
  roots: ['<rootDir>/shared', '<rootDir>/dev-vault', '<rootDir>/control-room', '<rootDir>/runner', '<rootDir>/bots', '<rootDir>/test'],
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['**/*.test.ts'], testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '\\.e2e\\.test\\.ts$', '/node_modules/'] },
    // globalSetup: bot hosts and CLIs run from dist, so dist is built (or refused when stale) first.
    { ...common, displayName: 'integration', testMatch: ['**/*.int.test.ts', '**/*.e2e.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/integration-setup.ts'], globalSetup: '<rootDir>/test/global-setup.js' },
  ],
};
