import type { RunSandbox } from './ports';

/**
 * The runner's jobs in flight and the sandboxes of their runs: what a shutdown waits for, and what
 * it aborts when its grace is over. Also the slots: one concurrency slot (its own uid) per run.
 */
export class ActiveRuns {
  private readonly sandboxes = new Map<string, RunSandbox>();
  private readonly jobs = new Set<Promise<unknown>>();
  private readonly idle: number[];

  constructor(readonly slots: number) {
    this.idle = Array.from({ length: slots }, (_, slot) => slot);
  }

  /** An idle slot for a run, or undefined when every slot is busy. */
  takeSlot(): number | undefined {
    return this.idle.pop();
  }

  freeSlot(slot: number): void {
    this.idle.push(slot);
  }

  /** Counts a job until it settles. */
  track<T>(job: Promise<T>): Promise<T> {
    this.jobs.add(job);
    const untrack = () => void this.jobs.delete(job);
    job.then(untrack, untrack);
    return job;
  }

  get inFlight(): number {
    return this.jobs.size;
  }

  /** Resolves once no job is in flight (jobs that start meanwhile are waited for too). */
  async settled(): Promise<void> {
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs]);
  }

  add(runId: string, sandbox: RunSandbox): void {
    this.sandboxes.set(runId, sandbox);
  }

  remove(runId: string): void {
    this.sandboxes.delete(runId);
  }

  /** Asks the run's bot to stop (its sandbox ends it if it does not). */
  abort(runId: string): void {
    this.sandboxes.get(runId)?.abort(runId);
  }

  /** Aborts every active run; returns their ids. */
  abortAll(): string[] {
    const ids = [...this.sandboxes.keys()];
    for (const id of ids) this.abort(id);
    return ids;
  }
}
