import type { Logger } from '@orderly/shared';
import { AuditLog } from '../audit/audit';
import { Db } from '../db/db';
import { retryDelayMs } from './backoff';
import { FAILING_AFTER_ATTEMPTS } from './outbox';
import { ALERT_ID_HEADER, ALERT_SIGNATURE_HEADER, ALERT_TIMESTAMP_HEADER, signAlert } from './signature';

export interface AlertSenderDeps {
  db: Db;
  audit: AuditLog;
  log: Logger;
  webhookUrl: string;
  /** The HMAC key, read from its file at start. */
  secret: Buffer;
  /** How often due alerts are looked for. */
  pollMs?: number;
  /** First retry delay and the interval retries settle at. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** One delivery's time limit. */
  timeoutMs?: number;
}

interface DueRow {
  id: string;
  kind: string;
  body: Record<string, unknown>;
  attempts: number;
}

/** Rows taken for delivery are hidden this long: a control room that dies mid-send leaves them to be retried. */
const CLAIM_SECONDS = 60;

/**
 * Delivers the alert outbox to the webhook: signed, at least once, retried with exponential
 * backoff and jitter, forever at the maximum interval. Several control rooms can run it on one
 * database: a row is claimed (SKIP LOCKED) before it is sent.
 */
export class AlertSender {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: AlertSenderDeps) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.deliverDue()
        .then(
          () => undefined,
          (err: Error) => this.deps.log.warn({ err: { message: err.message } }, 'alert delivery pass failed'),
        )
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.deps.pollMs ?? 1000);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Sends every due alert once; returns how many were delivered. */
  async deliverDue(): Promise<number> {
    const due = await this.deps.db.query<DueRow>(
      `UPDATE alert_outbox SET next_attempt_at = now() + ($1::double precision * interval '1 second')
       WHERE id IN (SELECT id FROM alert_outbox WHERE delivered_at IS NULL AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED)
       RETURNING id, kind, body, attempts`,
      [CLAIM_SECONDS],
    );
    let delivered = 0;
    for (const row of due) {
      if (this.stopped) break;
      if (await this.send(row)) delivered++;
    }
    return delivered;
  }

  private async send(row: DueRow): Promise<boolean> {
    const id = String(row.id);
    const body = JSON.stringify({ v: 1, id, ...row.body });
    const timestamp = Math.floor(Date.now() / 1000);
    let failure: string | undefined;
    try {
      const response = await fetch(this.deps.webhookUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [ALERT_ID_HEADER]: id,
          [ALERT_TIMESTAMP_HEADER]: String(timestamp),
          [ALERT_SIGNATURE_HEADER]: signAlert(this.deps.secret, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.deps.timeoutMs ?? 10_000),
      });
      await response.body?.cancel().catch(() => undefined);
      // Only a 2xx is a delivery; the receiver's answer body is never stored (it is not ours to keep).
      if (!response.ok) failure = `HTTP ${response.status}`;
    } catch (err) {
      const e = err as { name?: string; cause?: { code?: string } };
      failure = e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? 'network error');
    }
    if (failure === undefined) {
      await this.deps.db.query(
        'UPDATE alert_outbox SET delivered_at = now(), last_attempt_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1',
        [id],
      );
      this.deps.log.info({ alertId: id, kind: row.kind, attempts: row.attempts + 1 }, 'alert delivered');
      return true;
    }
    const attempts = row.attempts + 1;
    const delayMs = retryDelayMs(attempts, { baseMs: this.deps.retryBaseMs ?? 1000, maxMs: this.deps.retryMaxMs ?? 300_000 });
    await this.deps.db.query(
      `UPDATE alert_outbox SET attempts = $2, last_attempt_at = now(), last_error = $3, next_attempt_at = now() + ($4::double precision * interval '1 millisecond') WHERE id = $1`,
      [id, attempts, failure, delayMs],
    );
    const fields = { alertId: id, kind: row.kind, attempts, failure, retryInMs: delayMs };
    if (attempts >= FAILING_AFTER_ATTEMPTS) {
      // Never dropped, never silent: every failure from here on is an error-level line, and the
      // alert shows as failing in GET /v1/alerts until it gets through.
      this.deps.log.error(fields, 'alert delivery keeps failing; still retrying');
      if (attempts === FAILING_AFTER_ATTEMPTS) {
        await this.deps.audit
          .append({
            actor: 'control-room',
            action: 'alert.delivery_failing',
            target: `alert:${id}`,
            outcome: 'failure',
            details: { kind: row.kind, attempts, failure },
          })
          .catch((err: Error) => this.deps.log.warn({ err: { message: err.message } }, 'audit append failed'));
      }
    } else {
      this.deps.log.warn(fields, 'alert delivery failed; will retry');
    }
    return false;
  }
}
