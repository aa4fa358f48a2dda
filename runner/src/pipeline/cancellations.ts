import { KeyObject } from 'node:crypto';
import type { Redis } from 'ioredis';
import { cancelChannel, isOrderlyError, SegmentName, verifyCancel } from '@orderly/shared';
import type { Logger } from '@orderly/shared';

/** A cancelled run id is remembered this long, for a cancel that lands before the bot starts. */
const REMEMBER_MS = 10 * 60 * 1000;

/**
 * Listens for cancelled runs and aborts their bots. A message counts only when the control room
 * signed it (its job-signing key), for a run of this runner's segment, and it has not expired:
 * otherwise anyone who can publish on Redis could abort any active run, halfway through its side
 * effects. The run is `cancelled` in the database before the message is sent, so a later claim of
 * it is refused anyway; this is what stops a bot that is already running.
 */
export class RunCancellations {
  private readonly cancelled = new Map<string, number>();
  private readonly aborts = new Map<string, () => void>();

  private constructor(
    private readonly subscriber: Redis,
    private readonly log: Logger,
    private readonly controlRoomKey: KeyObject,
    private readonly segment: SegmentName,
  ) {}

  /** Subscribes on a connection of its own (a subscribed connection can do nothing else). */
  static async start(deps: {
    connection: Redis;
    prefix: string;
    log: Logger;
    controlRoomSigningKey: KeyObject;
    segment: SegmentName;
  }): Promise<RunCancellations> {
    const subscriber = deps.connection.duplicate();
    subscriber.on('error', () => undefined); // reconnects and resubscribes by itself
    const cancellations = new RunCancellations(subscriber, deps.log, deps.controlRoomSigningKey, deps.segment);
    subscriber.on('message', (_channel: string, raw: string) => cancellations.onMessage(raw));
    await subscriber.subscribe(cancelChannel(deps.prefix, deps.segment));
    return cancellations;
  }

  private onMessage(raw: string): void {
    let runId: string;
    try {
      runId = verifyCancel(raw, this.controlRoomKey, this.segment);
    } catch (err) {
      // Logged without the message: it is untrusted, and its run id may be made up.
      this.log.warn(
        { code: isOrderlyError(err) ? err.code : 'ORDERLY_E_CANCEL_REFUSED', reason: err instanceof Error ? err.message.slice(0, 200) : undefined },
        'cancel message ignored',
      );
      return;
    }
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
