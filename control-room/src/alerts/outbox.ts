import { z } from 'zod';
import type { Logger } from '@orderly/shared';
import { Db, Queryable } from '../db/db';

/** What an alert says. No PHI: ids, names, codes and counts only. */
export const AlertBody = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('run.dead_lettered'),
    runId: z.string(),
    bot: z.string(),
    segment: z.string(),
    errorCode: z.string().nullable(),
    attempts: z.number(),
  }),
  z.object({
    kind: z.literal('queue.age'),
    segment: z.string(),
    queue: z.string(),
    oldestWaitingSeconds: z.number(),
    waiting: z.number(),
    thresholdSeconds: z.number(),
  }),
  // A sensitive identity change waits for a second security person (access/requests.ts).
  z.object({
    kind: z.literal('access.requested'),
    requestId: z.string(),
    request: z.enum(['grant_roles', 'register_runner']),
    target: z.string(),
    roles: z.array(z.string()),
    segment: z.string().nullable(),
    requestedBy: z.string(),
  }),
  z.object({
    kind: z.literal('compliance.check_failed'),
    reportId: z.string(),
    reportDigest: z.string(),
    checkId: z.string(),
    controlId: z.string(),
    result: z.string(),
  }),
  // The bootstrap admin token (the break-glass identity) was used in production (http/app.ts).
  z.object({
    kind: z.literal('access.break_glass_used'),
    route: z.string(),
    at: z.string(),
  }),
  // A break-glass local account signed in while single sign-on is configured (identity/break-glass.ts).
  z.object({
    kind: z.literal('auth.break_glass'),
    useId: z.string(),
    username: z.string(),
    via: z.enum(['console', 'api', 'cli']),
    at: z.string(),
  }),
]);
export type AlertBody = z.infer<typeof AlertBody>;

/** Undelivered alerts with at least this many failed deliveries are reported as failing. */
export const FAILING_AFTER_ATTEMPTS = 8;

export interface AlertStats {
  configured: boolean;
  pending: number;
  failing: number;
  delivered: number;
  oldestPendingAt: string | null;
  undelivered: { id: string; kind: string; attempts: number; lastError: string | null; nextAttemptAt: string; createdAt: string }[];
}

/**
 * The durable alert outbox. An alert is a row before it is anything else, written in the same
 * transaction as the event it reports when there is one, so a crash between the two cannot lose
 * it; the sender delivers rows at least once (receivers dedupe on the alert id).
 */
export class AlertOutbox {
  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    /** Without a webhook there is nowhere to deliver: alerts are logged, not queued forever. */
    private readonly configured: boolean,
  ) {}

  private async insert(q: Queryable, dedupeKey: string, body: AlertBody): Promise<void> {
    if (!this.configured) {
      this.log.warn(
        {
          alert: body.kind,
          ...('runId' in body
            ? { runId: body.runId }
            : 'requestId' in body
              ? { requestId: body.requestId }
              : 'segment' in body
                ? { segment: body.segment }
                : 'route' in body
                  ? { route: body.route }
                  : 'checkId' in body
                    ? { checkId: body.checkId }
                    : { username: body.username }),
        },
        'alert raised (no webhook configured)',
      );
      return;
    }
    await q.query('INSERT INTO alert_outbox (kind, dedupe_key, body) VALUES ($1, $2, $3) ON CONFLICT (dedupe_key) DO NOTHING', [
      body.kind,
      dedupeKey,
      JSON.stringify(body),
    ]);
  }

  /** A sensitive identity change is pending (call inside the transaction that recorded it). */
  async accessRequested(tx: Queryable, alert: Extract<AlertBody, { kind: 'access.requested' }>): Promise<void> {
    await this.insert(tx, `access_request:${alert.requestId}`, alert);
  }

  /** A compliance check passed in the previous report and fails in this one (call in the report's transaction). */
  async complianceRegressed(tx: Queryable, alert: Extract<AlertBody, { kind: 'compliance.check_failed' }>): Promise<void> {
    await this.insert(tx, `compliance:${alert.reportId}:${alert.checkId}`, alert);
  }

  /**
   * The break-glass identity was used. One alert per route and minute: a person working through an
   * emergency makes many requests, and the receiver needs to know it happened and where, not each call.
   */
  async breakGlassUsed(route: string, at: Date): Promise<void> {
    const minute = at.toISOString().slice(0, 16);
    await this.insert(this.db, `break_glass:${route}:${minute}`, { kind: 'access.break_glass_used', route, at: at.toISOString() });
  }

  /** A break-glass local account was used (call in the transaction that audits it): one alert per use. */
  async breakGlassSignIn(tx: Queryable, alert: Extract<AlertBody, { kind: 'auth.break_glass' }>): Promise<void> {
    await this.insert(tx, `break_glass_sign_in:${alert.useId}`, alert);
  }

  /** A run has just been dead-lettered (call inside the transaction that moved it). */
  async deadLettered(tx: Queryable, runId: string, errorCode: string | null): Promise<void> {
    const rows = await tx.query<{ bot_name: string; segment: string; attempts: number; requeues: number }>(
      'SELECT bot_name, segment, attempts, requeues FROM runs WHERE id = $1',
      [runId],
    );
    const run = rows[0];
    if (!run) return;
    // One alert per arrival in the DLQ: a requeued run that dead-letters again alerts again.
    await this.insert(tx, `dead_letter:${runId}:${run.requeues}`, {
      kind: 'run.dead_lettered',
      runId,
      bot: run.bot_name,
      segment: run.segment,
      errorCode,
      attempts: run.attempts,
    });
  }

  /**
   * A queue's oldest waiting run is older than the threshold. At most one alert per queue per
   * threshold window: the window bucket in the dedupe key settles concurrent control rooms, the
   * recency check spaces alerts across a bucket edge.
   */
  async queueAge(alert: Extract<AlertBody, { kind: 'queue.age' }>, now = Date.now()): Promise<void> {
    const windowMs = alert.thresholdSeconds * 1000;
    const recent = await this.db.query(
      "SELECT 1 FROM alert_outbox WHERE kind = 'queue.age' AND body->>'segment' = $1 AND created_at > now() - ($2::double precision * interval '1 second') LIMIT 1",
      [alert.segment, alert.thresholdSeconds],
    );
    if (recent.length > 0) return;
    await this.insert(this.db, `queue_age:${alert.segment}:${Math.floor(now / windowMs)}`, alert);
  }

  /** Pending and failing counts, for `GET /v1/alerts`: an alert that cannot be delivered stays visible. */
  async stats(): Promise<AlertStats> {
    const [counts] = await this.db.query<{ pending: string; failing: string; delivered: string; oldest: Date | null }>(
      `SELECT count(*) FILTER (WHERE delivered_at IS NULL) AS pending,
              count(*) FILTER (WHERE delivered_at IS NULL AND attempts >= $1) AS failing,
              count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
              min(created_at) FILTER (WHERE delivered_at IS NULL) AS oldest
       FROM alert_outbox`,
      [FAILING_AFTER_ATTEMPTS],
    );
    const undelivered = await this.db.query<{ id: string; kind: string; attempts: number; last_error: string | null; next_attempt_at: Date; created_at: Date }>(
      'SELECT id, kind, attempts, last_error, next_attempt_at, created_at FROM alert_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 50',
    );
    return {
      configured: this.configured,
      pending: Number(counts?.pending ?? 0),
      failing: Number(counts?.failing ?? 0),
      delivered: Number(counts?.delivered ?? 0),
      oldestPendingAt: counts?.oldest ? counts.oldest.toISOString() : null,
      undelivered: undelivered.map((r) => ({
        id: String(r.id),
        kind: r.kind,
        attempts: r.attempts,
        lastError: r.last_error,
        nextAttemptAt: r.next_attempt_at.toISOString(),
        createdAt: r.created_at.toISOString(),
      })),
    };
  }
}
