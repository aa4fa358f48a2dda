import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { OrderlyError } from '@orderly/shared';
import { loadTryConfig, recorderEnv } from './config';

/** The recorder's command line: playwright-core's own CLI, `codegen` writing JavaScript to `out`. */
export function recorderArgs(url: string, out: string): string[] {
  if (!/^https?:\/\//.test(url)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'orderly bot record takes an http(s) URL');
  // cli.js is not in playwright-core's exports: found beside its package.json.
  return [join(dirname(require.resolve('playwright-core/package.json')), 'cli.js'), 'codegen', '--target', 'javascript', '--output', resolve(out), url];
}

/**
 * `orderly-runner record URL --out FILE`: Playwright's recorder (it ships in playwright-core) in a
 * headed Chromium, the runner's (`ORDERLY_CHROMIUM_PATH`), not in a sandbox: a developer records
 * the steps of a new bot on their own display. The script is written to FILE as the steps are
 * recorded, and is complete when the recorder window is closed. Resolves with the exit code.
 */
export async function runRecordCommand(url: string, out: string): Promise<number> {
  const args = recorderArgs(url, out);
  const config = loadTryConfig();
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: recorderEnv(config.chromiumPath) });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  try {
    return await new Promise<number>((done, fail) => {
      child.once('error', fail);
      child.once('exit', (code, signal) => done(code ?? (signal ? 128 + 15 : 1)));
    });
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
}
