import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint, Linter } from 'eslint';

// The repository's own eslint.config.js (loaded here: ESLint's own loader needs a dynamic import
// that jest's sandbox refuses), without type information: the import rules need none, and a
// type-aware lint refuses probe files that are in no tsconfig.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const config = require('../eslint.config.js') as Linter.Config[];
const eslint = new ESLint({
  cwd: join(__dirname, '..'),
  overrideConfigFile: true,
  baseConfig: [
    ...config,
    {
      languageOptions: { parserOptions: { project: null, projectService: false } },
      rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-misused-promises': 'off' },
    },
  ],
});

const PRETTIER = join(__dirname, '..', 'node_modules', '.bin', 'prettier');

async function importErrors(file: string, from: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import { x } from '${from}';\nexport const y = x;\n`, { filePath: join(__dirname, '..', file) });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

test.each([
  ['control-room/src/runs/probe.ts', '@orderly/dev-vault', /development tool/],
  ['runner/src/pipeline/probe.ts', '@orderly/dev-vault', /development tool/],
  ['control-room/src/runs/probe.ts', '@orderly/shared/testing', /tests only/],
  ['shared/src/vault/probe.ts', '../testing', /tests only/],
  ['bots/eligibility-check/src/probe.ts', '@orderly/shared/testing', /tests only/],
  ['control-room/src/runs/probe.ts', '@orderly/runner', /share only/],
  ['runner/src/pipeline/probe.ts', '@orderly/control-room', /share only/],
  ['control-room/src/runs/probe.test.ts', '@orderly/runner', /share only/],
  // The CLI is a client of the HTTP API: no server module, from either depth of its folder.
  ['control-room/src/cli/commands/probe.ts', '../../runs/runs', /client of the HTTP API/],
  ['control-room/src/cli/commands/probe.ts', '../../keys/secrets', /client of the HTTP API/],
  ['control-room/src/cli/probe.ts', '../http/app', /client of the HTTP API/],
  ['control-room/src/cli/probe.ts', '@orderly/control-room', /client of the HTTP API/],
  ['control-room/src/cli/commands/probe.ts', '@orderly/runner', /share only/],
  ['control-room/src/cli/commands/probe.ts', '@orderly/dev-vault', /development tool/],
])(
  'lint refuses %s importing %s',
  async (file, from, message) => {
    const errors = await importErrors(file, from);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
  },
  30_000,
);

test.each([
  ['control-room/src/runs/probe.test.ts', '@orderly/shared/testing'],
  ['control-room/src/runs/probe.test.ts', '@orderly/dev-vault'],
  ['test/e2e/probe.e2e.test.ts', '@orderly/dev-vault'],
  ['shared/src/testing/probe.ts', './archives'],
  ['control-room/src/runs/probe.ts', '@orderly/shared/vault'],
  ['control-room/src/cli/commands/probe.ts', '@orderly/shared'],
  ['control-room/src/cli/commands/probe.ts', '../output'],
  ['control-room/src/cli/commands/probe.ts', './login'],
  ['control-room/src/cli/probe.ts', './api-client'],
  ['control-room/src/cli/commands/probe.test.ts', '../../keys/secrets'],
  ['control-room/src/runs/probe.ts', '../keys/secrets'],
])(
  'lint lets %s import %s',
  async (file, from) => {
    expect(await importErrors(file, from)).toEqual([]);
  },
  30_000,
);

// `make lint` runs `prettier --check` with the repository's .prettierrc.json.
test('the format check refuses an unformatted file and passes it once formatted', () => {
  const dir = mkdtempSync(join(__dirname, '.format-probe-'));
  try {
    const file = join(dir, 'probe.ts');
    writeFileSync(file, 'export const probe = {a:1,\n  b : "two"}\n');
    const check = () => spawnSync(PRETTIER, ['--check', file], { cwd: join(__dirname, '..'), encoding: 'utf8' });
    expect(check().status).toBe(1);
    expect(spawnSync(PRETTIER, ['--write', file], { cwd: join(__dirname, '..') }).status).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe("export const probe = { a: 1, b: 'two' };\n");
    expect(check().status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
