import { Gauge, Metric, Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { runQueueName, SegmentName } from '@orderly/shared';
import { Db } from '../db/db';

/** Upper bounds (seconds) of the run duration histogram: a small form to a long batch. */
export const RUN_DURATION_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

/** The BullMQ states counted per segment queue (what an operator calls queue depth). */
export const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'failed', 'completed'] as const;

export interface MetricsDeps {
  db: Db;
  redis: Redis;
  queuePrefix: string;
  segments: readonly SegmentName[];
}

/**
 * The control room's Prometheus registry. Every value is read at scrape time from the database
 * (runs, dead letters, refusals, attempts) or from BullMQ (queue depth): they survive restarts and
 * agree between control room replicas, which in-process counters would not. Nothing here reads PHI:
 * only counts, states, segments and error codes.
 */
export class ControlRoomMetrics {
  readonly registry = new Registry();
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly deps: MetricsDeps) {
    const { db } = deps;
    const queueOf = (segment: SegmentName) => this.queue(segment);
    new Gauge({
      name: 'orderly_queue_jobs',
      help: 'Jobs in each segment run queue by BullMQ state',
      labelNames: ['segment', 'state'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const segment of deps.segments) {
          const counts = await queueOf(segment).getJobCounts(...QUEUE_STATES);
          for (const state of QUEUE_STATES) this.set({ segment, state }, counts[state] ?? 0);
        }
      },
    });
    new Gauge({
      name: 'orderly_runs',
      help: 'Runs in the database by segment and status (waiting, active, succeeded, failed, dead_lettered, cancelled, discarded)',
      labelNames: ['segment', 'status'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = await db.query<{ segment: string; status: string; n: string }>('SELECT segment, status, count(*) AS n FROM runs GROUP BY segment, status');
        for (const row of rows) this.set({ segment: row.segment, status: row.status }, Number(row.n));
      },
    });
    new Gauge({
      name: 'orderly_oldest_waiting_seconds',
      help: 'Age of the oldest waiting run per segment (since it was created, retried or requeued); 0 when none waits',
      labelNames: ['segment'],
      registers: [this.registry],
      async collect() {
        this.reset();
        // Same definition as the queue-age alert (alerts/queue-age.ts), so the graph and the alert agree.
        const rows = await db.query<{ segment: string; age: number }>(
          `SELECT segment, EXTRACT(EPOCH FROM now() - min(updated_at))::double precision AS age FROM runs WHERE status = 'waiting' GROUP BY segment`,
        );
        const ages = new Map(rows.map((r) => [r.segment, Number(r.age)]));
        for (const segment of deps.segments) this.set({ segment }, Math.max(0, ages.get(segment) ?? 0));
      },
    });
    new Gauge({
      name: 'orderly_dead_letters',
      help: 'Runs now dead-lettered per segment',
      labelNames: ['segment'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = await db.query<{ segment: string; n: string }>(`SELECT segment, count(*) AS n FROM runs WHERE status = 'dead_lettered' GROUP BY segment`);
        const counts = new Map(rows.map((r) => [r.segment, Number(r.n)]));
        for (const segment of deps.segments) this.set({ segment }, counts.get(segment) ?? 0);
      },
    });
    new Gauge({
      name: 'orderly_refusals',
      help: 'Jobs refused by runners and reports refused by the control room, by error code',
      labelNames: ['error_code'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = await db.query<{ error_code: string; n: string }>('SELECT error_code, count(*) AS n FROM job_refusals GROUP BY error_code');
        for (const row of rows) this.set({ error_code: row.error_code }, Number(row.n));
      },
    });
    new Gauge({
      name: 'orderly_lease_failures',
      help: 'Run attempts that failed on the credential lease (a Vault error issuing or using the SecretID), by error code',
      labelNames: ['error_code'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = await db.query<{ code: string; n: string }>(
          `SELECT error->>'code' AS code, count(*) AS n FROM run_attempts WHERE error->>'code' LIKE 'ORDERLY\\_E\\_VAULT\\_%' GROUP BY 1`,
        );
        for (const row of rows) this.set({ error_code: row.code }, Number(row.n));
      },
    });
    // Counted by the runner in the bot host and sent with each attempt's final report (run_attempts).
    const attemptTally = (name: string, column: 'redaction_drops' | 'sandbox_denials', help: string) =>
      new Gauge({
        name,
        help,
        labelNames: ['segment'],
        registers: [this.registry],
        async collect() {
          this.reset();
          const rows = await db.query<{ segment: string; n: string }>(
            `SELECT r.segment, coalesce(sum(a.${column}), 0) AS n FROM run_attempts a JOIN runs r ON r.id = a.run_id GROUP BY r.segment`,
          );
          const counts = new Map(rows.map((r) => [r.segment, Number(r.n)]));
          for (const segment of deps.segments) this.set({ segment }, counts.get(segment) ?? 0);
        },
      });
    attemptTally(
      'orderly_redaction_drops',
      'redaction_drops',
      'Log lines the runner dropped because its redactor failed on them (fail closed), by segment, over the runs kept',
    );
    attemptTally(
      'orderly_sandbox_denials',
      'sandbox_denials',
      "Connections the run sandbox's egress proxy refused (hosts outside the manifest, infrastructure endpoints), by segment, over the runs kept",
    );
    new Gauge({
      name: 'orderly_compliance_checks',
      help: 'Results of the latest compliance report (orderly compliance check, GET /v1/compliance or the daily run), by result',
      labelNames: ['result'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const [latest] = await db.query<{ summary: Record<string, number> | null }>(
          "SELECT report->'summary' AS summary FROM compliance_reports ORDER BY collected_at DESC LIMIT 1",
        );
        for (const [result, n] of Object.entries(latest?.summary ?? {})) this.set({ result }, Number(n));
      },
    });
    this.registry.registerMetric(this.runDurationHistogram());
  }

  /**
   * Run duration (started to finished, seconds) of finished runs by segment and outcome, as a
   * Prometheus histogram computed in one query. prom-client's Histogram only counts observations
   * made in this process; this one is derived from the database like the other metrics, so its
   * series are formatted by prom-client from the values given here (a thin adapter, hence the cast).
   */
  private runDurationHistogram(): Metric {
    const name = 'orderly_run_duration_seconds';
    const help = 'Duration of finished runs from start to finish, by segment and outcome';
    const db = this.deps.db;
    const bucketColumns = RUN_DURATION_BUCKETS.map((b, i) => `count(*) FILTER (WHERE d <= ${b}) AS b${i}`).join(', ');
    const metric = {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      async get() {
        const rows = await db.query<Record<string, string | number>>(
          `SELECT segment, status, count(*) AS n, coalesce(sum(d), 0)::double precision AS s, ${bucketColumns}
           FROM (SELECT segment, status, EXTRACT(EPOCH FROM finished_at - started_at)::double precision AS d FROM runs
                 WHERE finished_at IS NOT NULL AND started_at IS NOT NULL) AS f GROUP BY segment, status`,
        );
        const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
        for (const row of rows) {
          const labels = { segment: String(row.segment), outcome: String(row.status) };
          RUN_DURATION_BUCKETS.forEach((b, i) => values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: b }, value: Number(row[`b${i}`]) }));
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: Number(row.n) });
          values.push({ metricName: `${name}_sum`, labels, value: Number(row.s) });
          values.push({ metricName: `${name}_count`, labels, value: Number(row.n) });
        }
        return { name, help, type: 'histogram', aggregator: 'sum', values };
      },
      reset() {},
    };
    return metric as unknown as Metric;
  }

  private queue(segment: SegmentName): Queue {
    let queue = this.queues.get(segment);
    if (!queue) {
      queue = new Queue(runQueueName(segment), { connection: this.deps.redis, prefix: this.deps.queuePrefix });
      queue.on('error', () => undefined); // a Redis outage fails the scrape, which Prometheus records as `up 0`
      this.queues.set(segment, queue);
    }
    return queue;
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  async close(): Promise<void> {
    const queues = [...this.queues.values()];
    this.queues.clear();
    await Promise.all(queues.map((q) => q.close().catch(() => undefined)));
  }
}
