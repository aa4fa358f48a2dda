import { readFileSync } from 'node:fs';
import { OrderlyError, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { AuditLog } from '../audit/audit';
import { Db } from '../db/db';
import { AlertOutbox } from './outbox';
import { checkQueueAges } from './queue-age';
import { AlertSender } from './sender';

export { AlertOutbox } from './outbox';
export { alertRoutes } from './routes';
export { ALERT_ID_HEADER, ALERT_SIGNATURE_HEADER, ALERT_TIMESTAMP_HEADER, signAlert, verifyAlertSignature } from './signature';

export interface AlertsConfig {
  webhookUrl: string | undefined;
  secretFile: string | undefined;
  queueAgeSeconds: number;
}

/**
 * Wires the outbox, its sender (when a webhook is configured) and the periodic queue-age check.
 * The secret is read once, at start; a missing or short secret stops the control room.
 */
export function startAlerts(deps: {
  db: Db;
  audit: AuditLog;
  log: Logger;
  segments: readonly SegmentName[];
  config: AlertsConfig;
  pollMs?: number;
  retryBaseMs?: number;
}): { outbox: AlertOutbox; close(): Promise<void> } {
  let secret: Buffer | undefined;
  if (deps.config.webhookUrl) {
    try {
      secret = readFileSync(deps.config.secretFile!);
    } catch {
      throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', 'ORDERLY_ALERT_WEBHOOK_SECRET_FILE cannot be read');
    }
    secret = Buffer.from(secret.toString('utf8').trim());
    if (secret.length < 16) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', 'the alert webhook secret must be at least 16 bytes');
  }
  const outbox = new AlertOutbox(deps.db, deps.log, secret !== undefined);
  const sender =
    secret && deps.config.webhookUrl
      ? new AlertSender({
          db: deps.db,
          audit: deps.audit,
          log: deps.log,
          webhookUrl: deps.config.webhookUrl,
          secret,
          pollMs: deps.pollMs,
          retryBaseMs: deps.retryBaseMs,
        })
      : undefined;
  sender?.start();
  const thresholdSeconds = deps.config.queueAgeSeconds;
  // Checked at twice the threshold's rate (within 1-30 s), so an old queue is noticed in time.
  const checkEvery = Math.min(30_000, Math.max(1000, (thresholdSeconds * 1000) / 2));
  const ageTimer = setInterval(() => {
    checkQueueAges({ db: deps.db, outbox, segments: deps.segments, thresholdSeconds, log: deps.log }).catch((err: Error) =>
      deps.log.warn({ err: { message: err.message } }, 'queue age check failed'),
    );
    // Delivered alerts are kept a week for `GET /v1/alerts` and for receivers' questions; undelivered ones forever.
    deps.db
      .query("DELETE FROM alert_outbox WHERE delivered_at < now() - interval '7 days'")
      .catch((err: Error) => deps.log.warn({ err: { message: err.message } }, 'alert outbox pruning failed'));
  }, checkEvery);
  ageTimer.unref();
  return {
    outbox,
    async close() {
      clearInterval(ageTimer);
      await sender?.stop();
    },
  };
}
