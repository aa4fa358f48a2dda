import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { runQueueName, RunJobData, SegmentName } from '@orderly/shared';
import { RUN_BACKOFF } from './backoff';

export interface RunJobToAdd {
  segment: SegmentName;
  jobId: string;
  data: RunJobData;
  attempts: number;
  /** Held back this long before a runner may take it (a lost attempt's retry waits out the backoff). */
  delayMs?: number;
}

/** Where dead-lettered runs of a segment are listed for operators (BullMQ has no DLQ of its own). */
export const dlqQueueName = (segment: string) => `orderly.dlq.${segment}`;

/**
 * Waits for `work` at most `ms`: 'done', 'failed' (it rejected) or 'timeout'. A Redis command
 * issued while Redis is down waits in the client's offline queue instead of failing; callers
 * that answer requests must not wait with it. Work that times out goes on, and its rejection is
 * handled here.
 */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<'done' | 'failed' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => 'done' as const,
        () => 'failed' as const,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The BullMQ run queues, one per segment, created on first use. */
export class RunQueues {
  private readonly queues = new Map<string, Queue>();

  /** `jobIdOf`: the job id of a run's idempotency key, a keyed hash (`runJobIdHasher`), never the key. */
  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    readonly jobIdOf: (idempotencyKey: string) => string,
  ) {}

  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
      // Redis outages reach callers as failed adds (and /readyz); an unheard 'error' event would be
      // printed raw to stderr by BullMQ.
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Adds jobs, one addBulk per segment. The job id is a keyed hash of the run's idempotency key
   * (`jobIdOf`), so adding a job that is already queued is a no-op in BullMQ.
   */
  async add(jobs: readonly RunJobToAdd[]): Promise<void> {
    const bySegment = new Map<SegmentName, RunJobToAdd[]>();
    for (const job of jobs) {
      const list = bySegment.get(job.segment);
      if (list) list.push(job);
      else bySegment.set(job.segment, [job]);
    }
    await Promise.all(
      [...bySegment].map(([segment, list]) =>
        this.queue(runQueueName(segment)).addBulk(
          list.map((job) => ({
            name: 'run',
            data: job.data,
            opts: {
              jobId: job.jobId,
              attempts: job.attempts,
              backoff: RUN_BACKOFF,
              ...(job.delayMs ? { delay: job.delayMs } : {}),
              removeOnComplete: { age: 3600, count: 10_000 },
              removeOnFail: { age: 7 * 24 * 3600 },
            },
          })),
        ),
      ),
    );
  }

  /**
   * Removes a run job that has completed or failed, so a new job can take its id (BullMQ ignores
   * `add` for an id that exists). Answers `held` while a runner holds the job (it is about to
   * finish it), and `none` when there is no finished job: none at all, or a live one (waiting,
   * delayed), which is left alone.
   */
  async removeFinished(segment: SegmentName, jobId: string): Promise<'removed' | 'held' | 'none'> {
    const queue = this.queue(runQueueName(segment));
    const state = await queue.getJobState(jobId);
    if (state === 'active') return 'held';
    if (state !== 'completed' && state !== 'failed') return 'none';
    // 0: the job was locked between the two calls.
    return (await queue.remove(jobId)) === 1 ? 'removed' : 'held';
  }

  async close(): Promise<void> {
    const queues = [...this.queues.values()];
    this.queues.clear();
    await Promise.all(queues.map((q) => q.close()));
  }
}
