import type { Redis } from 'ioredis';
import { z } from 'zod';
import { cancelChannel, CancelMessage } from '@orderly/shared';
import type { Logger } from '@orderly/shared';

/** A cancelled run id is remembered this long, for a cancel that lands before the bot starts. */
const REMEMBER_MS = 10 * 60 * 1000;

/**
 * Listens for cancelled runs and aborts their bots. A message can only abort: whoever can
 * publish on Redis can already delete jobs, and a cancel never makes anything run, so the
 * message is not signed. The run is `cancelled` in the database before the message is sent, so
 * a later claim of it is refused anyway; this is what stops a bot that is already running.
 */
export class RunCancellations {
  private readonly cancelled = new Map<string, number>();
  private readonly aborts = new Map<string, () => void>();

  private constructor(private readonly subscriber: Redis, private readonly log: Logger) {}

  /** Subscribes on a connection of its own (a subscribed connection can do nothing else). */
  static async start(deps: { connection: Redis; prefix: string; log: Logger }): Promise<RunCancellations> {
    const subscriber = deps.connection.duplicate();
    subscriber.on('error', () => undefined); // reconnects and resubscribes by itself
    const cancellations = new RunCancellations(subscriber, deps.log);
    subscriber.on('message', (_channel: string, raw: string) => cancellations.onMessage(raw));
    await subscriber.subscribe(cancelChannel(deps.prefix));
    return cancellations;
  }

  private onMessage(raw: string): void {
    let parsed: z.ZodSafeParseResult<CancelMessage>;
    try {
      parsed = CancelMessage.safeParse(JSON.parse(raw));
    } catch {
      return;
    }
    if (!parsed.success) return;
    const { runId } = parsed.data;
    const now = Date.now();
    for (const [id, at] of this.cancelled) if (now - at > REMEMBER_MS) this.cancelled.delete(id);
    this.cancelled.set(runId, now);
    const abort = this.aborts.get(runId);
    this.log.info({ runId, running: abort !== undefined }, 'run cancelled by the control room');
    abort?.();
  }

  /** True once the control room has cancelled `runId` (recently). */
  wasCancelled(runId: string): boolean {
    return this.cancelled.has(runId);
  }

  /** Calls `abort` if `runId` is cancelled while attached; returns the detach function. */
  attach(runId: string, abort: () => void): () => void {
    this.aborts.set(runId, abort);
    if (this.cancelled.has(runId)) abort();
    return () => {
      if (this.aborts.get(runId) === abort) this.aborts.delete(runId);
    };
  }

  async close(): Promise<void> {
    this.aborts.clear();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
