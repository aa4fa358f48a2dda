import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { inputTypes } from './bot';

const run = promisify(execFile);
const root = resolve(__dirname, '../../../..');

test('input types are generated from the input schema', () => {
  expect(
    inputTypes({
      type: 'object',
      properties: { memberId: { type: 'string' }, count: { type: 'integer' }, kind: { enum: ['a', 'b'] }, tags: { type: 'array', items: { type: 'string' } } },
      required: ['memberId'],
    }),
  ).toContain('{\n  memberId: string;\n  count?: number;\n  kind?: "a" | "b";\n  tags?: Array<string>;\n}');
});

test('orderly bot init NAME, then npm test in the new bot, passes (the kit against a real Chromium)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-init-'));
  try {
    await run(process.execPath, [join(root, 'control-room/bin/orderly.js'), 'bot', 'init', 'hello-bot'], { cwd: dir });
    const bot = join(dir, 'hello-bot');
    expect(readFileSync(join(bot, 'src/input.d.ts'), 'utf8')).toContain('portalUrl: string;');
    expect(JSON.parse(readFileSync(join(bot, 'package.json'), 'utf8')).scripts.test).toContain('--test');
    // No network: the workspace's installed packages stand in for `npm install`.
    symlinkSync(join(root, 'node_modules'), join(bot, 'node_modules'));
    const tsc = await run(
      process.execPath,
      [
        join(root, 'node_modules/typescript/bin/tsc'),
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        'src/index.ts',
      ],
      { cwd: bot },
    ).catch((e: { stdout: string; code: number }) => e);
    expect(tsc).toMatchObject({ stdout: '' });
    const res = await run('npm', ['test', '--silent'], { cwd: bot, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(res.stdout).toMatch(/# pass 2/);
    expect(res.stdout).toMatch(/# fail 0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
