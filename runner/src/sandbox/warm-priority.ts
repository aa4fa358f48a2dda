import { readFileSync, writeFileSync } from 'node:fs';

/**
 * A pre-warmed sandbox starts its browser while another run is going on; on a small machine the
 * two compete for the CPU and the run in progress pays for the next one's start. The kernel shares
 * CPU between sessions (autogroups) first, and every sandbox is a session of its own (bwrap
 * --new-session), so a warming sandbox lowers its own session's priority (any process may), and
 * the runner raises it back when the sandbox takes its run (that needs CAP_SYS_NICE: root only).
 * Where the kernel has no autogroups, both sides are no-ops.
 */

/**
 * The autogroup a process is in (`/autogroup-42 nice 0` → `/autogroup-42`); `''` for the init
 * session's group, which the kernel shows as an empty file (a runner started by an init that never
 * called setsid is in it, and its sandboxes are still in groups of their own); undefined where the
 * kernel has no autogroups or the process is gone.
 */
function autogroupOf(pid: number | 'self'): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/autogroup`, 'utf8').split(' ')[0]!.trim();
  } catch {
    return undefined;
  }
}

/**
 * Inside the sandbox, before the browser starts: the lowest priority for this session. Only where
 * the session is the sandbox's own (its leader is in this process's pid namespace, or is this
 * process), never a session shared with the runner.
 */
export function yieldWhileWarming(): void {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    const session = Number(fields[3]); // the 6th field of stat: the session id, 0 outside our namespace
    if (session === 0) return;
    writeFileSync('/proc/self/autogroup', '19');
  } catch {
    // no autogroups: nothing to yield
  }
}

/** Children of a process in the host's view (Linux 3.5+ `children` files). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * On the runner, when the sandbox under `pid` takes its run: normal priority again for the
 * sandbox's session, found as the first process below `pid` in a session other than the runner's.
 * Best effort: a sandbox left at low priority is slower, never less contained.
 */
export function restorePriority(pid: number): boolean {
  const ours = autogroupOf('self');
  if (ours === undefined) return true; // no autogroups: nothing was lowered
  const queue = [pid];
  for (let seen = 0; queue.length && seen < 16; seen++) {
    const next = queue.shift()!;
    const group = autogroupOf(next);
    if (group && group !== ours) {
      try {
        writeFileSync(`/proc/${next}/autogroup`, '0');
      } catch {
        // not permitted (not root) or gone
      }
      return true;
    }
    queue.push(...childrenOf(next));
  }
  return false;
}

/**
 * One warming sandbox's priority, as the runner holds it: the sandbox warms up yielding the CPU
 * until a run asks for it (`hurry`: from then on, and for its run, at normal priority).
 */
export class WarmPriority {
  private pid: number | undefined;
  private hurried = false;

  /** Whether the sandbox should still warm up yielding (asked when it is told to start). */
  get yielding(): boolean {
    return !this.hurried;
  }

  attach(pid: number): void {
    this.pid = pid;
    if (this.hurried) this.restore(40);
  }

  hurry(): void {
    this.hurried = true;
    if (this.pid !== undefined) this.restore(40);
  }

  /** The sandbox's session may not exist yet (bwrap still setting up): looked for again briefly. */
  private restore(triesLeft: number): void {
    if (this.pid === undefined || restorePriority(this.pid) || triesLeft === 0) return;
    setTimeout(() => this.restore(triesLeft - 1), 25).unref();
  }
}

/** The nice value of the autogroup a process is in (tests and diagnostics). */
export function autogroupNice(pid: number | 'self'): number | undefined {
  try {
    const match = / nice (-?\d+)/.exec(readFileSync(`/proc/${pid}/autogroup`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
