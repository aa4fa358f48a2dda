import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { reportToHtml, reportToOscal } from '../../compliance/export';
import { DISPOSAL_KINDS, DisposalListView } from '../../compliance/retention';
import { ComplianceReportView, EvidenceRecorded } from '../../compliance/schemas';
import { ApiClient } from '../api-client';
import { output } from '../output';

const KINDS = ['audit_review', 'access_review', 'restore_drill', 'backup'] as const;

/** `orderly compliance check` and `orderly compliance evidence`: the HIPAA Security Rule checks Orderly runs on itself. */
export function complianceCommand(client: () => ApiClient): Command {
  const compliance = new Command('compliance').description('HIPAA Security Rule checks and their evidence');
  compliance
    .command('check')
    .description("run every compliance check; the signed report's digest is appended to the audit log. Exits 1 when a check fails or errs")
    .option('--json', 'the signed report as JSON')
    .option('--html <file>', 'also write the report as an HTML page a person reads')
    .option('--oscal <file>', 'also write the report as OSCAL assessment results (JSON)')
    .action(async (opts: { json?: boolean; html?: string; oscal?: string }) => {
      const report = await client().request('GET', '/v1/compliance', ComplianceReportView);
      if (opts.html) writeFileSync(opts.html, reportToHtml(report));
      if (opts.oscal) writeFileSync(opts.oscal, `${JSON.stringify(reportToOscal(report), null, 2)}\n`);
      output(opts.json, report, [
        ...report.results.map((r) => `${r.result.padEnd(14)} ${r.controlId.padEnd(22)} ${r.checkId.padEnd(34)} ${r.observed}`),
        `${report.results.length} checks: ${Object.entries(report.summary)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ')}; report ${report.id} sha256 ${report.digest}`,
      ]);
      if ((report.summary.fail ?? 0) > 0 || (report.summary.error ?? 0) > 0) process.exitCode = 1;
    });
  compliance
    .command('evidence')
    .description('record that a safeguard was carried out: audit_review, access_review, restore_drill or backup')
    .argument('<kind>', KINDS.join(' | '), (raw: string) => {
      if (!(KINDS as readonly string[]).includes(raw)) throw new InvalidArgumentError(`one of ${KINDS.join(', ')}`);
      return raw;
    })
    .option('--note <ticket>', 'a ticket or reference (no PHI)')
    .option('--json', 'machine-readable output')
    .action(async (kind: string, opts: { note?: string; json?: boolean }) => {
      const res = await client().request('POST', '/v1/compliance/evidence', EvidenceRecorded, { kind, details: opts.note ? { note: opts.note } : {} });
      output(opts.json, res, `recorded ${res.recorded}`);
    });
  compliance
    .command('disposals')
    .description('list the disposal records of the retention purges (what went, how many, the time range and the policy; never content)')
    .option('--kind <kind>', DISPOSAL_KINDS.join(' | '), (raw: string) => {
      if (!(DISPOSAL_KINDS as readonly string[]).includes(raw)) throw new InvalidArgumentError(`one of ${DISPOSAL_KINDS.join(', ')}`);
      return raw;
    })
    .option('--limit <n>', 'at most this many, newest first (1-1000)', (raw: string) => {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('an integer from 1 to 1000');
      return n;
    })
    .option('--json', 'machine-readable output')
    .action(async (opts: { kind?: string; limit?: number; json?: boolean }) => {
      const query = new URLSearchParams({ ...(opts.kind ? { kind: opts.kind } : {}), ...(opts.limit ? { limit: String(opts.limit) } : {}) }).toString();
      const { disposals } = await client().request('GET', `/v1/compliance/disposals${query ? `?${query}` : ''}`, DisposalListView);
      output(
        opts.json,
        disposals,
        disposals.length
          ? disposals.map(
              (d) => `${d.disposedAt}  ${d.kind.padEnd(12)} ${String(d.count).padStart(7)}  from ${d.rangeStart} to ${d.rangeEnd}  ${d.policy}  by ${d.actor}`,
            )
          : 'no disposal recorded',
      );
    });
  return compliance;
}
