import { Command } from 'commander';
import { z } from 'zod';
import { AccessRequestList, AccessRequestView } from '../../identity/schemas';
import { ApiClient } from '../api-client';
import { output } from '../output';

const line = (r: z.infer<typeof AccessRequestView>) =>
  [
    r.id,
    r.status,
    r.kind === 'grant_roles' ? `${r.target} ${r.rolesBefore.join(',') || '-'} -> ${r.rolesAfter.join(',')}` : `${r.target} (segment ${r.segment})`,
    `by ${r.requestedBy}`,
    r.decidedBy ? `decided by ${r.decidedBy}` : '',
  ]
    .join('  ')
    .trim();

const PhiReads = z.object({
  reads: z.array(
    z.object({
      seq: z.number(),
      at: z.string(),
      actor: z.string(),
      runId: z.string(),
      segment: z.string().nullable(),
      part: z.string().nullable(),
      reason: z.string().nullable(),
    }),
  ),
});

/** `orderly access`: pending sensitive identity changes, and the review of PHI reads. */
export function accessCommand(client: () => ApiClient): Command {
  const access = new Command('access').description('pending identity changes a second security person confirms; the review of PHI reads');
  access
    .command('requests')
    .description('list pending access requests (granting security/approver, production runners)')
    .option('--all', 'also the approved and rejected ones')
    .option('--json', 'machine-readable output')
    .action(async (opts: { all?: boolean; json?: boolean }) => {
      const { requests } = await client().request('GET', `/v1/access/requests${opts.all ? '?status=all' : ''}`, AccessRequestList);
      output(opts.json, requests, requests.length ? requests.map(line) : ['no access requests']);
    });
  for (const verb of ['approve', 'reject'] as const) {
    access
      .command(verb)
      .description(`${verb} another person's pending request (needs a fresh TOTP code: prompted for)`)
      .argument('<id>', 'request id')
      .option('--json', 'machine-readable output')
      .action(async (id: string, opts: { json?: boolean }) => {
        const decided = await client().request('POST', `/v1/access/requests/${encodeURIComponent(id)}/${verb}`, AccessRequestView, {});
        output(opts.json, decided, line(decided));
      });
  }
  access
    .command('phi-reads')
    .description("who read which run's PHI, when and why (auditors)")
    .option('--since <time>', 'ISO time')
    .option('--actor <actor>', 'e.g. user:alice')
    .option('--run <id>', 'one run')
    .option('--limit <n>', 'at most this many, newest first', '100')
    .option('--json', 'machine-readable output')
    .action(async (opts: { since?: string; actor?: string; run?: string; limit: string; json?: boolean }) => {
      const query = new URLSearchParams({
        limit: opts.limit,
        ...(opts.since ? { since: opts.since } : {}),
        ...(opts.actor ? { actor: opts.actor } : {}),
        ...(opts.run ? { runId: opts.run } : {}),
      });
      const { reads } = await client().request('GET', `/v1/access/phi-reads?${query.toString()}`, PhiReads);
      output(
        opts.json,
        reads,
        reads.length
          ? reads.map((r) => `${r.at}  ${r.actor}  run ${r.runId} (${r.segment ?? '?'})  ${r.part ?? '?'}  reason: ${r.reason ?? ''}`)
          : ['no PHI reads'],
      );
    });
  return access;
}
