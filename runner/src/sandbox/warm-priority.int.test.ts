import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@orderly/shared/testing';
import { autogroupNice, restorePriority } from './warm-priority';

// The compiled module, as a bot host loads it (the globalSetup builds dist).
const COMPILED = join(__dirname, '../../dist/sandbox/warm-priority.js');

// detached: a new session, as every sandbox is (bwrap --new-session).
function warmingProcess(): ReturnType<typeof spawn> {
  return spawn(process.execPath, ['-e', `require(${JSON.stringify(COMPILED)}).yieldWhileWarming(); setInterval(() => {}, 1000);`], {
    detached: true,
    stdio: 'ignore',
  });
}

async function alive(child: ReturnType<typeof spawn>): Promise<boolean> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  return child.exitCode === null && child.signalCode === null;
}

// Kernels differ (CI machines may be built without CONFIG_SCHED_AUTOGROUP), and a test process
// may itself be in the init session's group, which shows no nice value (CI's is): the test checks
// what the README promises on each kind, all of which a regression can break.
test('a warming process in a session of its own yields the CPU, and the runner gives it back, without touching its own session', async () => {
  const ours = autogroupNice('self');
  const child = warmingProcess();
  try {
    const pid = child.pid!;
    if (!existsSync('/proc/self/autogroup')) {
      // No autogroups: both sides are no-ops, the warm-up goes on and the runner sees nothing to raise.
      expect(await alive(child)).toBe(true);
      expect(restorePriority(pid)).toBe(true);
      expect(autogroupNice(pid)).toBeUndefined();
      return;
    }
    await waitFor(async () => (autogroupNice(pid) === 19 ? true : undefined), 10_000, 'the warming process to lower its priority');
    expect(autogroupNice('self')).toBe(ours);
    expect(restorePriority(pid)).toBe(true);
    // Root may raise it back; anyone else keeps the low priority (a slower run, never a looser one).
    expect(autogroupNice(pid)).toBe(process.getuid?.() === 0 ? 0 : 19);
    expect(autogroupNice('self')).toBe(ours);
  } finally {
    child.kill('SIGKILL');
  }
});
