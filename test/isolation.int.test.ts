import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from './harness';

/**
 * Invariant 8: control-room/ and runner/ never import each other. It is a compile error (tsconfig
 * `paths` maps the other package to a file outside the project), not a convention. Each probe compiles one import
 * with the workspace's own compiler settings; the control probe shows the setup compiles at all.
 */
const tsc = join(REPO, 'node_modules', '.bin', 'tsc');

async function compileProbe(workspace: string, source: string): Promise<string> {
  // Inside the workspace folder, so type roots and the workspace's paths apply.
  const dir = mkdtempSync(join(REPO, workspace, '.isolation-probe-'));
  try {
    writeFileSync(join(dir, 'probe.ts'), source);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../tsconfig.json',
        compilerOptions: { noEmit: true, composite: false, incremental: false, rootDir: '.' },
        include: ['probe.ts'],
        exclude: [],
      }),
    );
    try {
      await promisify(execFile)(tsc, ['-p', join(dir, 'tsconfig.json')]);
      return '';
    } catch (err) {
      return String((err as { stdout?: string }).stdout);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test.each([
  ['control-room', '@orderly/runner'],
  ['runner', '@orderly/control-room'],
])('%s cannot import %s', async (workspace, forbidden) => {
  const output = await compileProbe(workspace, `import * as other from '${forbidden}';\nexport const probe = other;\n`);
  // Whatever the import form, the mapped file lies outside the project: TS6059 (outside rootDir).
  expect(output).toMatch(/error TS6059: File '.*tools\/forbidden-import.ts' is not under 'rootDir'/);
});

test.each(['control-room', 'runner'])('%s can import @orderly/shared', async (workspace) => {
  expect(await compileProbe(workspace, "import { OrderlyError } from '@orderly/shared';\nexport const probe = OrderlyError;\n")).toBe('');
});
