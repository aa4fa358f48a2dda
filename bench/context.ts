import type { Stack } from '../test/harness';
import { Cleanup } from './lib';
import { RunnerStack, startQueueOnlyStack, startRunnerStack } from './stacks';

/** Stacks that measurements share; each starts on first use and closes after its last user. */
export interface Resources {
  runnerStack: RunnerStack;
  postgresQueueStack: Stack;
  pgliteQueueStack: Stack;
}
export type ResourceName = keyof Resources;

const FACTORIES: { [K in ResourceName]: () => Promise<Resources[K]> } = {
  runnerStack: startRunnerStack,
  postgresQueueStack: () => startQueueOnlyStack('postgres'),
  pgliteQueueStack: () => startQueueOnlyStack('pglite'),
};

/** One figure group: returns its figures and baselines by key (see GOALS in figures.ts). */
export interface Measurement {
  name: string;
  /** The shared resources it needs; anything else it opens it closes itself (or via `cleanup`). */
  uses: readonly ResourceName[];
  run(ctx: BenchContext): Promise<Record<string, number>>;
}

export class BenchContext {
  private readonly open = new Map<ResourceName, Promise<{ close(): Promise<void> }>>();

  constructor(readonly cleanup: Cleanup) {}

  /** The shared resource, started on first use; the bench closes it after its last user. */
  get<K extends ResourceName>(name: K): Promise<Resources[K]> {
    let pending = this.open.get(name);
    if (!pending) {
      pending = FACTORIES[name]();
      this.open.set(name, pending);
      // Registered at once: a resource that fails to start has cleaned up after itself.
      this.cleanup.add(name, () => this.release(name));
    }
    return pending as Promise<Resources[K]>;
  }

  /** Warnings and errors the open stacks logged lately (their logs are captured, not printed). */
  async recentProblems(max = 5): Promise<string[]> {
    const lines: string[] = [];
    for (const pending of this.open.values()) {
      const resource = (await pending.catch(() => undefined)) as { log?: { lines: string[] }; stack?: { log: { lines: string[] } } } | undefined;
      const log = resource?.log ?? resource?.stack?.log;
      if (log) lines.push(...log.lines.filter((l) => /"level":"(warn|error|fatal)"/.test(l)).slice(-max));
    }
    return lines;
  }

  /** Closes a shared resource if it was started; idempotent. */
  async release(name: ResourceName): Promise<void> {
    const pending = this.open.get(name);
    this.open.delete(name);
    if (!pending) return;
    const resource = await pending.catch(() => undefined);
    await resource?.close();
  }
}
