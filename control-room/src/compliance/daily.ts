import type { Logger } from '@orderly/shared';
import type { Leadership } from '../db/leadership';
import { Compliance } from './report';

/** The actor of the scheduled compliance reports in the audit chain. */
export const SCHEDULED_COMPLIANCE_ACTOR = 'control-room';

/**
 * Runs the compliance checks every `ORDERLY_COMPLIANCE_INTERVAL_SECONDS` (a day by default) on the
 * leader only (db/leadership.ts: several replicas, one report per interval), so the chain holds a
 * signed report per day without anyone asking, and a check turning from pass to fail alerts even
 * when nobody looks. No run at start: a restart loop would otherwise fill the chain with reports.
 * Failures are logged by check id, never with observed values.
 */
export function scheduleCompliance(leadership: Pick<Leadership, 'every'>, compliance: Pick<Compliance, 'check'>, log: Logger, intervalMs: number): void {
  leadership.every('compliance check', intervalMs, () => runScheduledCompliance(compliance, log));
}

/** One scheduled run: the report, and a log line naming the failing checks. */
export async function runScheduledCompliance(compliance: Pick<Compliance, 'check'>, log: Logger): Promise<void> {
  const report = await compliance.check(SCHEDULED_COMPLIANCE_ACTOR);
  const failing = report.results.filter((r) => r.result === 'fail' || r.result === 'error').map((r) => r.checkId);
  if (failing.length > 0) log.warn({ failing, reportId: report.id }, 'compliance checks failing');
  else log.info({ reportId: report.id }, 'compliance checks pass');
}
