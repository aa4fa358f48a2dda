import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { ApiClient } from '../api-client';
import { output } from '../output';

const Review = z.object({
  id: z.string(),
  startedAt: z.string(),
  startedBy: z.string(),
  dueAt: z.string(),
  completedAt: z.string().nullable(),
  items: z.array(
    z.object({
      itemId: z.number(),
      kind: z.string(),
      subjectId: z.string(),
      label: z.string(),
      roles: z.array(z.string()),
      lastUsedAt: z.string().nullable(),
      decision: z.enum(['confirmed', 'revoked']).nullable(),
      decidedBy: z.string().nullable(),
      decidedAt: z.string().nullable(),
    }),
  ),
});
type Review = z.infer<typeof Review>;

const lines = (r: Review) => [
  `access review ${r.id}: started ${r.startedAt} by ${r.startedBy}, due ${r.dueAt}, ${r.completedAt ? `completed ${r.completedAt}` : `${r.items.filter((i) => !i.decision).length} of ${r.items.length} open`}`,
  ...r.items.map(
    (i) =>
      `  ${String(i.itemId).padStart(4)}  ${(i.decision ?? 'open').padEnd(9)} ${i.kind.padEnd(16)} ${i.label.padEnd(32)} roles ${i.roles.join(',') || '-'}  last used ${i.lastUsedAt ?? 'never'}`,
  ),
];

const positive = (raw: string) => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
};

/** `orderly access review start|show|decide`: access review campaigns (security team, `users.manage`); a subcommand of `orderly access`. */
export function accessReviewCommand(client: () => ApiClient): Command {
  const review = new Command('review').description(
    'access review campaigns: every person, service account, runner identity, API token and bot credential, confirmed or revoked',
  );
  review
    .command('start')
    .description('open a campaign listing everything that can act, with roles and last use')
    .option('--due-in-days <n>', 'days until items are overdue (1-90)', positive, 14)
    .option('--json', 'machine-readable output')
    .action(async (opts: { dueInDays: number; json?: boolean }) => {
      const r = await client().request('POST', '/v1/access-reviews', Review, { dueInDays: opts.dueInDays });
      output(opts.json, r, lines(r));
    });
  review
    .command('show')
    .description('a campaign and the decision on each item')
    .argument('<id>', 'campaign id')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const r = await client().request('GET', `/v1/access-reviews/${encodeURIComponent(id)}`, Review);
      output(opts.json, r, lines(r));
    });
  review
    .command('decide')
    .description('confirm an item, or revoke it (takes effect at once; a bot credential is marked for rotation)')
    .argument('<id>', 'campaign id')
    .argument('<item>', 'item number', positive)
    .argument('<decision>', 'confirm | revoke', (raw: string) => {
      if (raw !== 'confirm' && raw !== 'revoke') throw new InvalidArgumentError('confirm or revoke');
      return raw;
    })
    .option('--json', 'machine-readable output')
    .action(async (id: string, item: number, decision: string, opts: { json?: boolean }) => {
      const r = await client().request('POST', `/v1/access-reviews/${encodeURIComponent(id)}/items/${item}`, Review, {
        decision: decision === 'confirm' ? 'confirmed' : 'revoked',
      });
      output(opts.json, r, lines(r));
    });
  return review;
}
