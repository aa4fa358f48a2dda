import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { buildProgram, ControlRoomConfigSchema } from '@orderly/control-room';
import { RunnerConfigSchema } from '@orderly/runner';
import { ERROR_CODES } from '@orderly/shared';
import { CliConfigSchema } from '../control-room/src/cli/config';

/** The README is the front door: every variable, error code and command must be in it. */
const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

function commandPaths(command: Command, prefix: string[] = []): string[] {
  return command.commands.flatMap((sub) => {
    const path = [...prefix, sub.name()];
    return sub.commands.length ? commandPaths(sub, path) : [path.join(' ')];
  });
}

test.each([
  ['control room', Object.keys(ControlRoomConfigSchema.in.shape)],
  ['runner', Object.keys(RunnerConfigSchema.in.shape)],
  ['CLI', Object.keys(CliConfigSchema.shape)],
])('every %s configuration variable is documented', (_process, variables) => {
  expect(variables.length).toBeGreaterThan(2);
  expect(variables.filter((v) => !readme.includes(`| \`${v}\` |`))).toEqual([]);
});

test('every error code is documented with its status and retryability', () => {
  const missing = Object.entries(ERROR_CODES).filter(
    ([code, { status, retryable }]) => !readme.includes(`| \`${code}\` | ${status} | ${retryable ? 'yes' : 'no'} |`),
  );
  expect(missing.map(([code]) => code)).toEqual([]);
});

test('every CLI command is in the CLI reference', () => {
  const paths = commandPaths(buildProgram()).filter((p) => p !== 'help');
  expect(paths).toContain('bot pack');
  expect(paths.filter((p) => !readme.includes(`\`orderly ${p}`))).toEqual([]);
});

test("the README's architecture and ../shared/DESIGN.md's layout name every workspace there is, and only those", () => {
  const root = join(__dirname, '..');
  const workspaces = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
  const topLevel = [...new Set(workspaces.map((w) => w.split('/')[0]!))].sort();
  expect(topLevel).toContain('dev-vault');
  for (const dir of topLevel) expect(existsSync(join(root, dir))).toBe(true);
  const inReadme = [...readme.matchAll(/^- \*\*`([a-z-]+)\/`\*\*/gm)].map((m) => m[1]).sort();
  expect(inReadme).toEqual(topLevel);
  const design = join(root, '..', 'shared', 'DESIGN.md');
  if (!existsSync(design)) return; // a clone without ../shared beside it: the README check stands alone
  const layout = /## 3\. Layout\s+```([\s\S]*?)```/.exec(readFileSync(design, 'utf8'))![1]!;
  // images/ holds container files, not a workspace.
  const inDesign = [...layout.matchAll(/^([a-z-]+)\/\s/gm)]
    .map((m) => m[1]!)
    .filter((dir) => dir !== 'images')
    .sort();
  expect(inDesign).toEqual(topLevel);
});
