import { spawn } from 'node:child_process';
import { Command } from 'commander';

/** The runner's binary: the recorder runs on the runner's Chromium, through a process boundary. */
function runnerRecord(): { command: string; args: string[] } {
  try {
    return { command: process.execPath, args: [require.resolve('@orderly/runner/bin/orderly-runner.js'), 'record'] };
  } catch {
    return { command: 'orderly-runner', args: ['record'] };
  }
}

/** `orderly bot record URL [--out FILE]`: Playwright's recorder, its script written to FILE. */
export function botRecordCommand(): Command {
  return new Command('record')
    .description("start Playwright's recorder on URL (a headed Chromium: ORDERLY_CHROMIUM_PATH) and write the recorded steps to --out")
    .argument('<url>', 'the http(s) page to start on')
    .option('--out <file>', 'where the recorded script is written (complete when the recorder window is closed)', 'recorded.js')
    .action(async (url: string, options: { out: string }) => {
      const { command, args } = runnerRecord();
      const child = spawn(command, [...args, url, '--out', options.out], { stdio: 'inherit' });
      const code = await new Promise<number>((done, fail) => {
        child.once('error', fail);
        child.once('exit', (status) => done(status ?? 1));
      });
      process.exitCode = code;
    });
}
