// Two projects: `unit` (no services, in-memory fakes of our own ports) and `integration`
// (real Redis, PostgreSQL, Chromium and the dev Vault). Tests run from TypeScript sources;
// `@orderly/shared` is mapped to its sources so no build is needed before a test run.
const common = {
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  moduleNameMapper: {
    '^@orderly/shared(/.*)?$': '<rootDir>/shared/src$1',
    '^@orderly/control-room$': '<rootDir>/control-room/src/index.ts',
    '^@orderly/runner$': '<rootDir>/runner/src/index.ts',
    '^@orderly/demo-portal$': '<rootDir>/bots/demo-portal/src/index.ts',
  },
  testEnvironment: 'node',
  rootDir: __dirname,
  roots: ['<rootDir>/shared', '<rootDir>/control-room', '<rootDir>/runner', '<rootDir>/bots', '<rootDir>/test'],
  modulePathIgnorePatterns: ['<rootDir>/.*/dist/'],
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['**/*.test.ts'], testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '\\.e2e\\.test\\.ts$', '/node_modules/'] },
    { ...common, displayName: 'integration', testMatch: ['**/*.int.test.ts', '**/*.e2e.test.ts'], setupFilesAfterEnv: ['<rootDir>/test/integration-setup.ts'] },
  ],
};
