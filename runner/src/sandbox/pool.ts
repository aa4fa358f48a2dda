import { OrderlyError } from '@orderly/shared';
import type { Sandbox } from './sandbox';

/**
 * One pre-warmed sandbox per slot: while a slot's run goes on, its next sandbox starts (process,
 * SDK, Chromium), so a run does not wait for a cold start. A pre-warmed sandbox serves exactly one
 * run; one that died while waiting is replaced.
 */
export class SandboxPool {
  private readonly warm: Array<Promise<Sandbox> | undefined>;
  /** The sandbox each slot handed out last: a slot serves one run at a time. */
  private readonly handedOut: Array<Sandbox | undefined>;
  private closed = false;
  /** Aborted at close: sandboxes still warming up are ended instead of awaited. */
  private readonly closing = new AbortController();

  constructor(
    /** Starts a sandbox for a slot (its own uid, limits and egress proxy), ended early if `signal` aborts. */
    private readonly launch: (slot: number, signal: AbortSignal) => Promise<Sandbox>,
    readonly size: number,
    private readonly prewarm: boolean,
    /** A run now waits for the slot's warming sandbox: it should stop yielding the CPU. */
    private readonly hurry: (slot: number) => void = () => undefined,
  ) {
    this.warm = Array.from({ length: size }, () => undefined);
    this.handedOut = Array.from({ length: size }, () => undefined);
  }

  /** Warms every slot and waits for them: a host that cannot make a sandbox fails here, at start. */
  async start(): Promise<void> {
    const first = Array.from({ length: this.size }, (_, slot) => this.launch(slot, this.closing.signal));
    const started = await Promise.allSettled(first);
    const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure || !this.prewarm) {
      await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.destroy() : undefined)));
      if (failure) throw failure.reason;
      return;
    }
    started.forEach((s, slot) => {
      if (s.status === 'fulfilled') this.warm[slot] = Promise.resolve(s.value);
    });
  }

  private warmUp(slot: number): void {
    if (this.closed || !this.prewarm) return;
    const next = this.launch(slot, this.closing.signal);
    next.catch(() => undefined); // a failed warm-up is met by the run that would take it
    this.warm[slot] = next;
  }

  /** A fresh sandbox for the slot's next run (ORDERLY_E_SANDBOX_UNAVAILABLE if none can be made). */
  async acquire(slot: number): Promise<Sandbox> {
    if (this.closed) throw new OrderlyError('ORDERLY_E_SANDBOX_UNAVAILABLE', 'the runner is shutting down');
    const waiting = this.warm[slot];
    this.warm[slot] = undefined;
    if (waiting) this.hurry(slot);
    let sandbox = waiting ? await waiting.catch(() => undefined) : undefined;
    if (!sandbox?.ready) {
      if (sandbox) void sandbox.destroy();
      sandbox = await this.launch(slot, this.closing.signal);
    }
    this.warmUp(slot);
    this.handedOut[slot] = sandbox;
    return sandbox;
  }

  /**
   * Destroys the waiting sandboxes, and any still in use (a run that outlived the shutdown's
   * bounds): their processes, files and egress proxies. Idempotent; a sandbox's destroy is too.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    const waiting = this.warm.splice(0);
    const handedOut = this.handedOut.splice(0);
    await Promise.all([
      ...waiting.map((w) =>
        w?.then(
          (s) => s.destroy(),
          () => undefined,
        ),
      ),
      ...handedOut.map((s) => s?.destroy()),
    ]);
  }
}
