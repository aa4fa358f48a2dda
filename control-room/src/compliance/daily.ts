import type { Logger } from '@orderly/shared';
import { Compliance } from './report';

/**
 * Runs the compliance checks once a day, so the chain holds a signed
 * report per day without anyone asking. Failures are logged by check id, never with observed values.
 */
export function startDailyCompliance(
  compliance: Compliance,
  log: Logger,
  intervalMs = 24 * 3600 * 1000,
  isLeader: () => boolean = () => true,
): { close(): Promise<void> } {
  const tick = () => {
    if (!isLeader()) return; // several replicas: only the leader reports (db/leadership.ts)
    compliance.check('control-room').then(
      (report) => {
        const failing = report.results.filter((r) => r.result === 'fail' || r.result === 'error').map((r) => r.checkId);
        if (failing.length > 0) log.warn({ failing, reportId: report.id }, 'compliance checks failing');
        else log.info({ reportId: report.id }, 'compliance checks pass');
      },
      (err: Error) => log.error({ err: { message: err.message } }, 'compliance check run failed'),
    );
  };
  // No run at start: a restart loop would otherwise fill the chain with reports.
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return { close: async () => clearInterval(timer) };
}
