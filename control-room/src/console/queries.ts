import { z } from 'zod';
import { canTransition, OrderlyError, RUN_STATUSES } from '@orderly/shared';
import type { Db } from '../db/db';

/**
 * The console's read model: read-only SQL that selects only what a page shows. Run inputs and
 * results are sealed columns these queries never select, so no page can leak them by accident.
 */

export interface SegmentCounts {
  segment: string;
  waiting: number;
  retrying: number;
  active: number;
  deadLettered: number;
  oldestWaitingAt: string | null;
  finishedLast5Min: number;
  succeededLast5Min: number;
}

export interface RunnerSeen {
  runner: string;
  segment: string | null;
  lastSeenAt: string | null;
  revoked: boolean;
}

export interface Overview {
  segments: SegmentCounts[];
  runners: RunnerSeen[];
  recent: { id: string; bot: string; version: string; segment: string; status: string; finishedAt: string | null }[];
}

const int = (v: unknown): number => Number(v ?? 0);

/** Counts per segment (every configured segment, even an empty one), runners and the latest runs. */
export async function overview(db: Db, segments: readonly string[]): Promise<Overview> {
  const [counts, oldest, recentCounts, identities, attempts, recent] = await Promise.all([
    db.query<{ segment: string; status: string; retrying: boolean; n: string }>(
      "SELECT segment, status, attempts > 0 AS retrying, count(*) AS n FROM runs WHERE status IN ('waiting', 'active', 'dead_lettered') GROUP BY 1, 2, 3",
    ),
    db.query<{ segment: string; at: Date }>("SELECT segment, min(created_at) AS at FROM runs WHERE status = 'waiting' GROUP BY 1"),
    db.query<{ segment: string; finished: string; succeeded: string }>(
      "SELECT segment, count(*) AS finished, count(*) FILTER (WHERE status = 'succeeded') AS succeeded FROM runs WHERE finished_at > now() - interval '5 minutes' AND status IN ('succeeded', 'failed', 'dead_lettered') GROUP BY 1",
    ),
    db.query<{ name: string; segment: string; last_used_at: Date | null; revoked_at: Date | null }>(
      'SELECT name, segment, last_used_at, revoked_at FROM runner_identities ORDER BY name LIMIT 200',
    ),
    db.query<{ runner_id: string; segment: string; at: Date }>(
      "SELECT a.runner_id, min(r.segment) AS segment, max(a.claimed_at) AS at FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE a.claimed_at > now() - interval '1 day' GROUP BY 1 ORDER BY 3 DESC LIMIT 50",
    ),
    db.query<{ id: string; bot_name: string; bot_version: string; segment: string; status: string; finished_at: Date | null }>(
      'SELECT id, bot_name, bot_version, segment, status, finished_at FROM runs ORDER BY updated_at DESC LIMIT 10',
    ),
  ]);
  const bySegment = new Map<string, SegmentCounts>();
  const seg = (name: string): SegmentCounts => {
    let s = bySegment.get(name);
    if (!s) {
      s = { segment: name, waiting: 0, retrying: 0, active: 0, deadLettered: 0, oldestWaitingAt: null, finishedLast5Min: 0, succeededLast5Min: 0 };
      bySegment.set(name, s);
    }
    return s;
  };
  for (const name of segments) seg(name);
  for (const c of counts) {
    const s = seg(c.segment);
    if (c.status === 'waiting') {
      s.waiting += int(c.n);
      if (c.retrying) s.retrying += int(c.n);
    } else if (c.status === 'active') s.active += int(c.n);
    else s.deadLettered += int(c.n);
  }
  for (const o of oldest) seg(o.segment).oldestWaitingAt = o.at.toISOString();
  for (const r of recentCounts) {
    const s = seg(r.segment);
    s.finishedLast5Min = int(r.finished);
    s.succeededLast5Min = int(r.succeeded);
  }
  const runners: RunnerSeen[] = identities.map((i) => ({
    runner: i.name,
    segment: i.segment,
    lastSeenAt: i.last_used_at?.toISOString() ?? null,
    revoked: i.revoked_at !== null,
  }));
  for (const a of attempts) {
    if (!runners.some((r) => r.runner === a.runner_id))
      runners.push({ runner: a.runner_id, segment: a.segment, lastSeenAt: a.at.toISOString(), revoked: false });
  }
  return {
    segments: [...bySegment.values()],
    runners,
    recent: recent.map((r) => ({
      id: r.id,
      bot: r.bot_name,
      version: r.bot_version,
      segment: r.segment,
      status: r.status,
      finishedAt: r.finished_at?.toISOString() ?? null,
    })),
  };
}

const Name = z
  .string()
  .trim()
  .max(100)
  .regex(/^[A-Za-z0-9@/._-]*$/, 'letters, digits and @ / . _ -');
const Datetime = z.union([
  z.literal(''),
  z
    .string()
    .max(40)
    .refine((v) => !Number.isNaN(Date.parse(v)), 'a date and time'),
]);

/** Runs page filters, as they appear in the URL (empty fields are no filter). */
export const RunsFilter = z.strictObject({
  bot: Name.optional(),
  version: Name.optional(),
  segment: z.union([z.literal(''), z.string().regex(/^[a-z][a-z0-9-]{0,31}$/)]).optional(),
  status: z.union([z.literal(''), z.enum(RUN_STATUSES)]).optional(),
  from: Datetime.optional(),
  to: Datetime.optional(),
  /** Keyset cursor: `<created_at ISO>_<id>` of the last row of the previous page. */
  after: z
    .string()
    .max(100)
    .regex(/^[0-9T:.Z+-]+_[0-9a-f-]{36}$/)
    .optional(),
});
export type RunsFilter = z.infer<typeof RunsFilter>;

export interface RunRowView {
  id: string;
  bot: string;
  version: string;
  segment: string;
  status: string;
  attempts: number;
  errorCode: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export const RUNS_PAGE_SIZE = 50;

/** The filter's conditions (bot, version, segment, time, the caller's segments) as SQL with `$n` arguments. */
function runConditions(filter: RunsFilter, segments: 'all' | ReadonlySet<string>): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    args.push(value);
    where.push(sql.replace('?', `$${args.length}`));
  };
  if (filter.bot) add('bot_name = ?', filter.bot);
  if (filter.version) add('bot_version = ?', filter.version);
  if (filter.segment) add('segment = ?', filter.segment);
  if (segments !== 'all') add('segment = ANY(?)', [...segments]);
  if (filter.from) add('created_at >= ?', new Date(filter.from).toISOString());
  if (filter.to) add('created_at < ?', new Date(filter.to).toISOString());
  return { where, args };
}

/** Runs a bulk cancel would end: waiting or active ones matching the filter, in the caller's segments, oldest first. */
export async function cancellableRuns(db: Db, filter: RunsFilter, segments: 'all' | ReadonlySet<string>, limit: number): Promise<string[]> {
  const { where, args } = runConditions(filter, segments);
  const statuses = RUN_STATUSES.filter((s) => canTransition(s, 'cancelled') && (!filter.status || filter.status === s));
  if (statuses.length === 0) return [];
  args.push(statuses, limit);
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM runs WHERE ${[...where, `status = ANY($${args.length - 1})`].join(' AND ')} ORDER BY created_at, id LIMIT $${args.length}`,
    args,
  );
  return rows.map((r) => r.id);
}

/**
 * One page of runs, newest first, by keyset (`created_at`, `id`): the cost of page N does not grow
 * with N, unlike OFFSET. `segments`: the segments the caller may read runs in.
 */
export async function runsPage(
  db: Db,
  filter: RunsFilter,
  segments: 'all' | ReadonlySet<string> = 'all',
): Promise<{ rows: RunRowView[]; next: string | null }> {
  const { where, args } = runConditions(filter, segments);
  if (filter.after) {
    const cut = filter.after.lastIndexOf('_');
    const at = filter.after.slice(0, cut);
    const id = filter.after.slice(cut + 1);
    if (Number.isNaN(Date.parse(at))) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'the page cursor is not valid');
    args.push(new Date(at).toISOString(), id);
    // Written so the (status, created_at) index bounds the scan; the id breaks ties.
    const a = `$${args.length - 1}::timestamptz`;
    const b = `$${args.length}::uuid`;
    where.push(`created_at <= ${a} AND (created_at < ${a} OR id < ${b})`);
  }
  args.push(RUNS_PAGE_SIZE + 1);
  const limit = `$${args.length}`;
  const columns = "id, bot_name, bot_version, segment, status, attempts, error->>'code' AS code, created_at, finished_at";
  // One index scan per status on runs_status_created, merged: without a status filter the newest
  // rows still come from the index, not from sorting the whole table (no migration needed).
  const statuses = filter.status ? [filter.status] : RUN_STATUSES;
  const parts = statuses.map(
    (status) => `(SELECT ${columns} FROM runs WHERE ${[`status = '${status}'`, ...where].join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ${limit})`,
  );
  const rows = await db.query<{
    id: string;
    bot_name: string;
    bot_version: string;
    segment: string;
    status: string;
    attempts: number;
    code: string | null;
    created_at: Date;
    finished_at: Date | null;
  }>(`SELECT * FROM (${parts.join(' UNION ALL ')}) page ORDER BY created_at DESC, id DESC LIMIT ${limit}`, args);
  const page = rows.slice(0, RUNS_PAGE_SIZE).map((r) => ({
    id: r.id,
    bot: r.bot_name,
    version: r.bot_version,
    segment: r.segment,
    status: r.status,
    attempts: r.attempts,
    errorCode: r.code,
    createdAt: r.created_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
  }));
  const last = page[page.length - 1];
  return { rows: page, next: rows.length > RUNS_PAGE_SIZE && last ? `${last.createdAt}_${last.id}` : null };
}

export interface RunDetail {
  run: RunRowView & { startedAt: string | null; maxAttempts: number; requeues: number; digest: string; error: { code: string; message: string } | null };
  attempts: { attempt: number; runner: string; claimedAt: string; finishedAt: string | null; outcome: string | null; code: string | null }[];
  steps: { name: string; attempt: number; status: string; startedAt: string; doneAt: string | null }[];
  leases: { attempt: number; accessor: string; leasedAt: string; releasedAt: string | null }[];
  screenshots: { id: number; attempt: number; name: string }[];
  release: { channel: string; at: string }[];
}

/** Everything the run detail page shows; the input and result are not selected. */
export async function runDetail(db: Db, id: string): Promise<RunDetail> {
  if (!z.uuid().safeParse(id).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'run ids are UUIDs');
  const [row] = await db.query<{
    id: string;
    bot_name: string;
    bot_version: string;
    digest: string;
    segment: string;
    status: string;
    attempts: number;
    max_attempts: number;
    requeues: number;
    error: { code?: string; message?: string } | null;
    created_at: Date;
    started_at: Date | null;
    finished_at: Date | null;
  }>(
    'SELECT id, bot_name, bot_version, digest, segment, status, attempts, max_attempts, requeues, error, created_at, started_at, finished_at FROM runs WHERE id = $1',
    [id],
  );
  if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${id}`);
  const [attempts, steps, leases, screenshots, release] = await Promise.all([
    db.query<{ attempt: number; runner_id: string; claimed_at: Date; finished_at: Date | null; outcome: string | null; code: string | null }>(
      "SELECT attempt, runner_id, claimed_at, finished_at, outcome, error->>'code' AS code FROM run_attempts WHERE run_id = $1 ORDER BY attempt",
      [id],
    ),
    db.query<{ name: string; attempt: number; status: string; started_at: Date; done_at: Date | null }>(
      'SELECT name, attempt, status, started_at, done_at FROM run_steps WHERE run_id = $1 ORDER BY started_at',
      [id],
    ),
    db.query<{ attempt: number; accessor: string; leased_at: Date; released_at: Date | null }>(
      'SELECT attempt, accessor, leased_at, released_at FROM run_leases WHERE run_id = $1 ORDER BY attempt',
      [id],
    ),
    db.query<{ id: string; attempt: number; name: string }>(
      'SELECT id, attempt, name FROM run_screenshots WHERE run_id = $1 AND expires_at > now() ORDER BY id',
      [id],
    ),
    db.query<{ channel: string; created_at: Date }>(
      'SELECT channel, approved_at AS created_at FROM release_attestations WHERE digest = $1 AND expires_at > now() ORDER BY approved_at',
      [row.digest],
    ),
  ]);
  return {
    run: {
      id: row.id,
      bot: row.bot_name,
      version: row.bot_version,
      segment: row.segment,
      status: row.status,
      attempts: row.attempts,
      maxAttempts: row.max_attempts,
      requeues: row.requeues,
      digest: row.digest,
      errorCode: row.error?.code ?? null,
      error: row.error ? { code: String(row.error.code ?? ''), message: String(row.error.message ?? '') } : null,
      createdAt: row.created_at.toISOString(),
      startedAt: row.started_at?.toISOString() ?? null,
      finishedAt: row.finished_at?.toISOString() ?? null,
    },
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      runner: a.runner_id,
      claimedAt: a.claimed_at.toISOString(),
      finishedAt: a.finished_at?.toISOString() ?? null,
      outcome: a.outcome,
      code: a.code,
    })),
    steps: steps.map((s) => ({
      name: s.name,
      attempt: s.attempt,
      status: s.status,
      startedAt: s.started_at.toISOString(),
      doneAt: s.done_at?.toISOString() ?? null,
    })),
    leases: leases.map((l) => ({
      attempt: l.attempt,
      accessor: l.accessor,
      leasedAt: l.leased_at.toISOString(),
      releasedAt: l.released_at?.toISOString() ?? null,
    })),
    screenshots: screenshots.map((s) => ({ id: Number(s.id), attempt: s.attempt, name: s.name })),
    release: release.map((r) => ({ channel: r.channel, at: r.created_at.toISOString() })),
  };
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** The run's log lines (redacted by the runner before they left the segment), at or above `level`. */
export async function runLogs(
  db: Db,
  id: string,
  level: (typeof LOG_LEVELS)[number],
): Promise<{ attempt: number; seq: number; at: string; level: string; source: string; msg: string }[]> {
  const levels = LOG_LEVELS.slice(LOG_LEVELS.indexOf(level));
  const rows = await db.query<{ attempt: number; seq: number; at: Date; level: string; source: string; msg: string }>(
    'SELECT attempt, seq, at, level, source, msg FROM run_logs WHERE run_id = $1 AND level = ANY($2) ORDER BY attempt, seq LIMIT 2000',
    [id, levels],
  );
  return rows.map((r) => ({ attempt: r.attempt, seq: r.seq, at: r.at.toISOString(), level: r.level, source: r.source, msg: r.msg }));
}

/** Audit search: newest first, by actor, action, target and time. */
export const AuditFilter = z.strictObject({
  actor: z.string().max(200).optional(),
  action: z.string().max(100).optional(),
  target: z.string().max(200).optional(),
  from: Datetime.optional(),
  to: Datetime.optional(),
});
export type AuditFilter = z.infer<typeof AuditFilter>;

export async function auditSearch(
  db: Db,
  filter: AuditFilter,
): Promise<{ seq: number; at: string; actor: string; action: string; target: string; outcome: string }[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    args.push(value);
    where.push(sql.replace('?', `$${args.length}`));
  };
  if (filter.actor) add('actor = ?', filter.actor);
  if (filter.action) add('action = ?', filter.action);
  if (filter.target) add('target = ?', filter.target);
  if (filter.from) add('at >= ?', new Date(filter.from).toISOString());
  if (filter.to) add('at < ?', new Date(filter.to).toISOString());
  const rows = await db.query<{ seq: string; at: Date; actor: string; action: string; target: string; outcome: string }>(
    `SELECT seq, at, actor, action, target, outcome FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT 200`,
    args,
  );
  return rows.map((r) => ({ seq: Number(r.seq), at: r.at.toISOString(), actor: r.actor, action: r.action, target: r.target, outcome: r.outcome }));
}
