import { randomUUID } from 'node:crypto';
import {
  assertMaskable,
  BotName,
  BotVersion,
  declaredPhiFromInput,
  IdempotencyKey,
  isOrderlyError,
  OrderlyError,
  RunView,
  SegmentName,
  validateInput,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { AuditLog } from '../audit/audit';
import { Db } from '../db/db';
import { Packages, StoredPackage } from '../packages/packages';
import { AtRestBox, AtRestCipher } from '../keys/at-rest';
import { Runs } from '../runs/runs';
import type { RepeatOptions } from 'bullmq';
import { BusinessCalendar, CalendarPolicy, isWorkingInstant, nextFire } from './calendar-rules';
import { Calendars } from './calendars';
import { CreateScheduleRequest, FireRecord, NextFires, ScheduleName, ScheduleView } from '@orderly/shared';
import { SchedulerQueue, schedulerMatches, SchedulerState } from './scheduler-queue';
import { calendarOfTickName, parseTiming, Timing } from './timing';
import { formatLocal, nextZonedFire } from './zoned';

interface ScheduleRow {
  id: string;
  name: string;
  bot_name: string;
  bot_version: string | null;
  segment: string;
  input_sealed: AtRestBox;
  cron: string | null;
  every_seconds: number | null;
  time_zone: string;
  calendar: string | null;
  calendar_policy: CalendarPolicy | null;
  overlap_policy: 'skip' | 'queue_one' | 'allow';
  misfire_policy: 'run_once' | 'skip';
  queued_fire_at: Date | null;
  paused: boolean;
  created_by: string;
  created_at: Date;
  last_fired_at: Date | null;
  last_error_code: string | null;
}

export interface SchedulesDeps {
  db: Db;
  packages: Packages;
  runs: Runs;
  cipher: AtRestCipher;
  schedulers: SchedulerQueue;
  audit: AuditLog;
  log: Logger;
  /** Segments this control room serves. */
  segments: readonly SegmentName[];
  /** Schedules may not fire more often than this. */
  minIntervalSeconds: number;
  /** Refuses schedules of packages a runner of the segment would refuse, like run creation does. */
  releaseGate: { gate(pkg: StoredPackage, segment: SegmentName): Promise<void> };
  /** A tick processed later than this after its fire time is a misfire (the control room was down). Default 60 s. */
  misfireGraceMs?: number;
  /** How often a queue_one schedule's queued fire checks whether the previous run has ended. Default 5 s. */
  drainPollMs?: number;
}

/** A schedule that moves non-working days' fires may fire at most this often a day. */
export const MAX_MOVED_FIRES_PER_DAY = 24;

/** How many times `cron` fires on its busiest day of a sample week (counting stops at `limit`). */
function firesPerDay(cron: string, limit: number): number {
  let most = 0;
  for (let day = 0; day < 7; day++) {
    const start = Date.UTC(2027, 0, 4 + day); // a Monday, then the rest of the week (UTC: wall time, no changes)
    let n = 0;
    for (let t = nextZonedFire(cron, 'UTC', start - 1); t !== undefined && t < start + 86_400_000 && n < limit; t = nextZonedFire(cron, 'UTC', t)) n++;
    most = Math.max(most, n);
  }
  return most;
}

/** At most this many missed fires are recorded for one outage (the count is always audited). */
export const MAX_MISSED_RECORDED = 1000;

/** The outcome of one fire: a run (new, or the one an earlier delivery of this fire created), nothing, or a failure. */
export type FireOutcome =
  | { kind: 'created'; run: RunView }
  | { kind: 'duplicate'; run?: RunView }
  | { kind: 'skipped'; reason: 'deleted' | 'paused' | 'overlap' | 'calendar' | 'misfire' }
  | { kind: 'queued'; replaced: number | null }
  | { kind: 'failed'; code: string; retryable: boolean };

const inputAad = (scheduleId: string) => `schedule-input:${scheduleId}`;
/** The idempotency key of the run of one fire: the same for every delivery of that fire, so one run per fire. */
export const fireIdempotencyKey = (scheduleId: string, fireTimeMs: number) => `schedule-${scheduleId}-${fireTimeMs}` as IdempotencyKey;

const calendarOf = (row: ScheduleRow) =>
  row.calendar !== null && row.calendar_policy !== null ? { name: row.calendar, policy: row.calendar_policy } : undefined;
const timingOf = (row: ScheduleRow): Timing =>
  row.cron !== null
    ? { kind: 'cron', cron: row.cron, timeZone: row.time_zone, calendar: calendarOf(row) }
    : { kind: 'every', everySeconds: row.every_seconds!, calendar: calendarOf(row) };

/** The idempotency-key prefix of a schedule's runs: how its runs are found without a column in `runs`. */
const keyPrefix = (scheduleId: string) => `schedule-${scheduleId}-`;

/**
 * BullMQ's repeat strategy for the schedules queue: the next fire of a cron scheduler after
 * `millis`, read on the wall clock of its zone (`zoned.ts`) and through its calendar (named in the
 * tick's job name). A calendar the database cannot give now is the last one read; one that is
 * gone is ignored (the fire re-checks, see `Schedules.fire`).
 */
export function scheduleRepeatStrategy(calendars: Calendars) {
  return async (millis: number, opts: RepeatOptions, name?: string): Promise<number | undefined> => {
    if (!opts.pattern) return undefined;
    const named = calendarOfTickName(name);
    const calendar = named ? await calendars.cached(named.name) : undefined;
    return nextFire({ cron: opts.pattern, timeZone: opts.tz ?? 'UTC', calendar, calendarPolicy: named?.policy }, millis);
  };
}
const isUuid = (ref: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);

/**
 * Schedules: operators' recurring runs. The database row is the truth; Redis holds one BullMQ
 * job scheduler per active schedule, brought in line with the row after every change (`sync`),
 * on start and at intervals (`reconcile`). A tick carries only the schedule's id; the fire opens
 * the sealed input and creates the run through `Runs.create` with a key naming schedule and fire
 * time, so however often a tick is delivered, a fire makes at most one run.
 */
export class Schedules {
  readonly calendars: Calendars;

  constructor(private readonly deps: SchedulesDeps) {
    this.calendars = new Calendars(deps.db);
  }

  private view(row: ScheduleRow, scheduler: SchedulerState | undefined): ScheduleView {
    return {
      id: row.id,
      name: row.name,
      bot: row.bot_name,
      version: row.bot_version,
      segment: row.segment,
      cron: row.cron,
      everySeconds: row.every_seconds,
      timeZone: row.time_zone,
      calendar: row.calendar,
      calendarPolicy: row.calendar_policy,
      overlap: row.overlap_policy,
      misfire: row.misfire_policy,
      queuedFireAt: row.queued_fire_at?.toISOString() ?? null,
      paused: row.paused,
      createdBy: row.created_by,
      createdAt: row.created_at.toISOString(),
      lastFiredAt: row.last_fired_at?.toISOString() ?? null,
      lastErrorCode: row.last_error_code,
      nextFireAt: !row.paused && scheduler?.next ? new Date(scheduler.next).toISOString() : null,
    };
  }

  /** The scheduler of a schedule, or undefined when Redis does not answer (reads never fail on it). */
  private async schedulerOf(id: string): Promise<SchedulerState | undefined> {
    return this.deps.schedulers.get(id).catch(() => undefined);
  }

  private async row(ref: string): Promise<ScheduleRow> {
    if (!isUuid(ref) && !ScheduleName.safeParse(ref).success)
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'a schedule is named by its id (UUID) or its name');
    const rows = await this.deps.db.query<ScheduleRow>(isUuid(ref) ? 'SELECT * FROM schedules WHERE id = $1' : 'SELECT * FROM schedules WHERE name = $1', [
      ref,
    ]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no schedule ${ref}`);
    return rows[0];
  }

  /**
   * Creates a schedule. Everything a run would be refused for now (unknown bot or version,
   * segment, release, input against the bot's schema, PHI too short to mask) refuses the
   * schedule up front, before anything is stored.
   */
  async create(request: CreateScheduleRequest, createdBy: string): Promise<ScheduleView> {
    const name = ScheduleName.safeParse(request.name);
    if (!name.success) throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', `invalid schedule name: ${name.error.issues[0]?.message ?? 'invalid'}`);
    const timing = parseTiming(request, this.deps.minIntervalSeconds);
    if (request.calendarPolicy !== undefined && request.calendar === undefined)
      throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', 'calendarPolicy needs a calendar');
    const calendarPolicy = request.calendar !== undefined ? (request.calendarPolicy ?? 'skip') : null;
    if (calendarPolicy === 'next_working_day' && timing.kind === 'every') {
      throw new OrderlyError(
        'ORDERLY_E_SCHEDULE_INVALID',
        'moving fires to the next working day needs a cron schedule; an interval schedule may only skip non-working days',
      );
    }
    if (calendarPolicy === 'next_working_day' && timing.kind === 'cron' && firesPerDay(timing.cron, MAX_MOVED_FIRES_PER_DAY + 1) > MAX_MOVED_FIRES_PER_DAY) {
      // Moving looks back over the non-working days before each fire; a pattern firing every minute would make that slow.
      throw new OrderlyError(
        'ORDERLY_E_SCHEDULE_INVALID',
        `moving fires to the next working day is for patterns that fire at most ${MAX_MOVED_FIRES_PER_DAY} times a day`,
        { maximumPerDay: MAX_MOVED_FIRES_PER_DAY },
      );
    }
    if (request.calendar !== undefined) await this.calendars.get(request.calendar);
    const pkg = await this.deps.packages.resolve(request.bot, request.version);
    const segment = request.segment ?? pkg.manifest.segments[0]!;
    if (!this.deps.segments.includes(segment)) {
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
    }
    if (!pkg.manifest.segments.includes(segment)) {
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `${pkg.view.name} may not run in segment ${segment}`, { segment, bot: pkg.view.name });
    }
    await this.deps.releaseGate.gate(pkg, segment);
    const input = validateInput(pkg.manifest.input, request.input);
    assertMaskable({ phi: declaredPhiFromInput(pkg.manifest.phi, input) });

    const id = randomUUID();
    const sealed = await this.deps.cipher.seal(input, inputAad(id));
    const rows = await this.deps.db
      .query<ScheduleRow>(
        `INSERT INTO schedules (id, name, bot_name, bot_version, segment, input_sealed, cron, every_seconds, created_by,
         time_zone, calendar, calendar_policy, overlap_policy, misfire_policy)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (name) DO NOTHING RETURNING *`,
        [
          id,
          name.data,
          pkg.view.name,
          request.version ?? null,
          segment,
          JSON.stringify(sealed),
          timing.kind === 'cron' ? timing.cron : null,
          timing.kind === 'every' ? timing.everySeconds : null,
          createdBy,
          request.timeZone ?? 'UTC',
          request.calendar ?? null,
          calendarPolicy,
          request.overlap ?? 'allow',
          request.misfire ?? 'run_once',
        ],
      )
      .catch((err: { code?: unknown }) => {
        // The calendar was deleted between the check and the insert.
        if (err.code === '23503') throw new OrderlyError('ORDERLY_E_CALENDAR_UNKNOWN', `no business calendar ${request.calendar}`);
        throw err;
      });
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_SCHEDULE_CONFLICT', `a schedule named ${name.data} already exists`);
    // The row is committed: if Redis does not answer now, the periodic reconcile adds the scheduler.
    await this.sync(id).catch((err: Error) =>
      this.deps.log.warn({ scheduleId: id, err: { message: err.message } }, 'schedule created; its scheduler will be added by the next reconcile'),
    );
    return this.view(rows[0], await this.schedulerOf(id));
  }

  async list(): Promise<ScheduleView[]> {
    const rows = await this.deps.db.query<ScheduleRow>('SELECT * FROM schedules ORDER BY name');
    const schedulers = await this.deps.schedulers.all().catch(() => [] as SchedulerState[]);
    const byId = new Map(schedulers.map((s) => [s.id, s]));
    return rows.map((row) => this.view(row, byId.get(row.id)));
  }

  async get(ref: string): Promise<ScheduleView> {
    const row = await this.row(ref);
    return this.view(row, await this.schedulerOf(row.id));
  }

  /** Pauses (true) or resumes (false) a schedule; doing it twice is harmless. */
  async setPaused(ref: string, paused: boolean): Promise<ScheduleView> {
    const { id } = await this.row(ref);
    const rows = await this.deps.db.query<ScheduleRow>('UPDATE schedules SET paused = $2, updated_at = now() WHERE id = $1 RETURNING *', [id, paused]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no schedule ${ref}`);
    await this.sync(id);
    return this.view(rows[0], await this.schedulerOf(id));
  }

  /** Deletes a schedule and its scheduler; a tick already queued finds no row and makes no run. */
  async remove(ref: string): Promise<ScheduleView> {
    const { id } = await this.row(ref);
    const rows = await this.deps.db.query<ScheduleRow>('DELETE FROM schedules WHERE id = $1 RETURNING *', [id]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no schedule ${ref}`);
    await this.sync(id);
    return this.view(rows[0], undefined);
  }

  /**
   * Brings the scheduler of one schedule in line with its row: present for an active row, absent
   * for a paused or deleted one. The row is read again afterwards and the step repeated if it
   * changed meanwhile: a pause racing a resume (or a tick's cleanup racing a resume) ends with
   * Redis matching whichever row state came last, not whichever Redis call came last.
   */
  async sync(id: string): Promise<void> {
    let wanted = await this.wanted(id);
    for (let i = 0; i < 5; i++) {
      if (wanted) await this.deps.schedulers.upsert(id, wanted);
      else await this.deps.schedulers.remove(id);
      const now = await this.wanted(id);
      if (JSON.stringify(now) === JSON.stringify(wanted)) return;
      wanted = now;
    }
  }

  /** The timing of an active schedule, or undefined when it is paused or gone. */
  private async wanted(id: string): Promise<Timing | undefined> {
    const rows = await this.deps.db.query<ScheduleRow>('SELECT * FROM schedules WHERE id = $1', [id]);
    return rows[0] && !rows[0].paused ? timingOf(rows[0]) : undefined;
  }

  /**
   * Reconciles Redis with the database: every active schedule gets its scheduler (added, or
   * replaced when its timing or tick differ), and every scheduler without an active row is
   * removed. Matching schedulers are left alone so a pending fire keeps its time. Safe to run
   * from several control rooms at once: each step is `sync`, which converges on the row.
   */
  async reconcile(): Promise<{ added: number; removed: number }> {
    const active = await this.deps.db.query<ScheduleRow>('SELECT * FROM schedules WHERE NOT paused');
    const schedulers = new Map((await this.deps.schedulers.all()).map((s) => [s.id, s]));
    let added = 0;
    let removed = 0;
    for (const row of active) {
      const existing = schedulers.get(row.id);
      // A scheduler without a next fire (its strategy failed once) is upserted again.
      if (existing && existing.next !== null && schedulerMatches(existing, row.id, timingOf(row))) continue;
      await this.sync(row.id);
      added++;
    }
    const activeIds = new Set(active.map((r) => r.id));
    for (const id of schedulers.keys()) {
      if (activeIds.has(id)) continue;
      await this.sync(id);
      removed++;
    }
    if (added || removed) this.deps.log.info({ added, removed }, 'schedules reconciled with Redis');
    return { added, removed };
  }

  /**
   * One fire of a schedule at `fireTimeMs`: re-checks the row (deleted or paused: no run, and a
   * stale scheduler is removed), then creates the run with the fire's idempotency key. A fire
   * whose run cannot be created for good (bot unpublished, input no longer valid for the latest
   * version, release missing) is logged, audited as `schedule.fire_failed` and not retried; a
   * transient failure is retried by the tick's attempts and audited when `finalAttempt`.
   */
  async fire(scheduleId: string, fireTimeMs: number, finalAttempt = true, nowMs = Date.now()): Promise<FireOutcome> {
    const rows = await this.deps.db.query<ScheduleRow>('SELECT * FROM schedules WHERE id = $1', [scheduleId]);
    const row = rows[0];
    if (!row || row.paused) {
      this.deps.log.info({ scheduleId, fireTime: fireTimeMs, reason: row ? 'paused' : 'deleted' }, 'schedule tick skipped');
      await this.sync(scheduleId).catch(() => undefined);
      return { kind: 'skipped', reason: row ? 'paused' : 'deleted' };
    }
    // A fire on a day its calendar (as it is now) does not work: nothing runs, and that is recorded.
    const calendar = row.calendar ? await this.calendars.cached(row.calendar) : undefined;
    if (calendar && !isWorkingInstant(calendar, fireTimeMs)) {
      await this.record(row, [fireTimeMs], 'calendar', 'skipped', null, { calendar: calendar.name });
      return { kind: 'skipped', reason: 'calendar' };
    }
    // Late by more than the grace: the control room was not taking ticks. Every fire due since is missed.
    if (nowMs - fireTimeMs > (this.deps.misfireGraceMs ?? 60_000)) {
      const missed = this.firesBetween(row, calendar, fireTimeMs, nowMs);
      if (row.misfire_policy === 'skip') {
        await this.record(row, missed, 'misfire', 'skipped', null, { missed: missed.length });
        return { kind: 'skipped', reason: 'misfire' };
      }
      // run_once: the first missed fire's run stands for all of them (its key makes it once).
      const outcome = await this.createRun(row, fireTimeMs, finalAttempt);
      const runId = outcome.kind === 'created' || outcome.kind === 'duplicate' ? (outcome.run?.id ?? null) : null;
      if (outcome.kind !== 'failed') {
        await this.record(row, [fireTimeMs], 'misfire', 'ran', runId, { missed: missed.length });
        await this.record(row, missed.slice(1), 'misfire', 'skipped', runId, null);
      }
      return outcome;
    }
    if (row.overlap_policy === 'queue_one' && row.queued_fire_at && row.queued_fire_at.getTime() < fireTimeMs) {
      // The previous run ended before the drain job looked: the queued fire goes first, this one
      // then waits behind it (at most one fire waits, and fires run in order).
      await this.drain(scheduleId, row.queued_fire_at.getTime());
    }
    if (row.overlap_policy !== 'allow') {
      const active = await this.activeRun(scheduleId, fireTimeMs);
      if (active) {
        if (row.overlap_policy === 'skip') {
          await this.record(row, [fireTimeMs], 'overlap', 'skipped', null, { activeRunId: active });
          return { kind: 'skipped', reason: 'overlap' };
        }
        return this.queue(row, fireTimeMs, active);
      }
    }
    return this.createRun(row, fireTimeMs, finalAttempt);
  }

  /** The fires of a schedule from `fromMs` (included) to `toMs`, at most MAX_MISSED_RECORDED. */
  private firesBetween(row: ScheduleRow, calendar: BusinessCalendar | undefined, fromMs: number, toMs: number): number[] {
    const fires = [fromMs];
    let t = fromMs;
    while (fires.length < MAX_MISSED_RECORDED) {
      const next =
        row.cron !== null
          ? nextFire({ cron: row.cron, timeZone: row.time_zone, calendar, calendarPolicy: row.calendar_policy ?? undefined }, t)
          : t + row.every_seconds! * 1000;
      if (next === undefined || next > toMs) break;
      if (row.cron !== null || !calendar || isWorkingInstant(calendar, next)) fires.push(next);
      t = next;
    }
    return fires;
  }

  /** The id of a run of this schedule, other than this fire's, that is still waiting or active. */
  private async activeRun(scheduleId: string, fireTimeMs: number): Promise<string | undefined> {
    const rows = await this.deps.db.query<{ id: string }>(
      `SELECT id FROM runs WHERE status IN ('waiting', 'active') AND idempotency_key LIKE $1 AND idempotency_key <> $2 ORDER BY created_at LIMIT 1`,
      [`${keyPrefix(scheduleId)}%`, fireIdempotencyKey(scheduleId, fireTimeMs)],
    );
    return rows[0]?.id;
  }

  /** queue_one: this fire waits for the previous run; a fire already waiting is replaced (recorded). */
  private async queue(row: ScheduleRow, fireTimeMs: number, activeRunId: string): Promise<FireOutcome> {
    const before = await this.deps.db.query<{ queued: Date | null }>(
      `WITH old AS (SELECT queued_fire_at FROM schedules WHERE id = $1 FOR UPDATE)
       UPDATE schedules SET queued_fire_at = to_timestamp($2::double precision / 1000) FROM old WHERE schedules.id = $1 RETURNING old.queued_fire_at AS queued`,
      [row.id, fireTimeMs],
    );
    const replaced = before[0]?.queued ? before[0].queued.getTime() : null;
    if (replaced !== null && replaced !== fireTimeMs) {
      await this.deps.db.query(
        `UPDATE schedule_fire_records SET handling = 'replaced' WHERE schedule_id = $1 AND fire_time = to_timestamp($2::double precision / 1000) AND reason = 'overlap'`,
        [row.id, replaced],
      );
    }
    await this.record(row, [fireTimeMs], 'overlap', 'queued', null, {
      activeRunId,
      replacedFireTime: replaced === null ? null : new Date(replaced).toISOString(),
    });
    await this.deps.schedulers.addDrain(row.id, fireTimeMs, this.deps.drainPollMs ?? 5000);
    return { kind: 'queued', replaced };
  }

  /**
   * A queue_one schedule's queued fire, checked by its drain job: created once the previous run
   * has ended ('done'), still waiting ('waiting', the job checks again), or gone ('none': fired,
   * replaced by a later fire, or the schedule paused or deleted).
   */
  async drain(scheduleId: string, fireTimeMs: number): Promise<'done' | 'waiting' | 'none'> {
    const rows = await this.deps.db.query<ScheduleRow>('SELECT * FROM schedules WHERE id = $1', [scheduleId]);
    const row = rows[0];
    if (!row || row.paused || row.queued_fire_at?.getTime() !== fireTimeMs) return 'none';
    if (await this.activeRun(scheduleId, fireTimeMs)) return 'waiting';
    const outcome = await this.createRun(row, fireTimeMs, true);
    if (outcome.kind === 'failed') {
      if (outcome.retryable) return 'waiting';
    } else {
      const runId = outcome.kind === 'created' || outcome.kind === 'duplicate' ? (outcome.run?.id ?? null) : null;
      await this.deps.db.query(
        `UPDATE schedule_fire_records SET handling = 'ran', run_id = $3 WHERE schedule_id = $1 AND fire_time = to_timestamp($2::double precision / 1000) AND reason = 'overlap'`,
        [scheduleId, fireTimeMs, runId],
      );
    }
    await this.deps.db.query('UPDATE schedules SET queued_fire_at = NULL WHERE id = $1 AND queued_fire_at = to_timestamp($2::double precision / 1000)', [
      scheduleId,
      fireTimeMs,
    ]);
    return 'done';
  }

  /**
   * Records fires that made no run of their own (one row each; a redelivered fire adds none) and
   * audits them once per call, when anything new was recorded: `schedule.misfire`,
   * `schedule.fire_skipped` (overlap, calendar) or `schedule.fire_queued`.
   */
  private async record(
    row: ScheduleRow,
    fires: number[],
    reason: FireRecord['reason'],
    handling: FireRecord['handling'],
    runId: string | null,
    details: Record<string, unknown> | null,
  ): Promise<void> {
    if (fires.length === 0) return;
    const inserted = await this.deps.db.query<{ fire_time: Date }>(
      `INSERT INTO schedule_fire_records (schedule_id, fire_time, reason, handling, run_id)
       SELECT $1, to_timestamp(f::double precision / 1000), $3, $4, $5 FROM unnest($2::bigint[]) AS f
       ON CONFLICT DO NOTHING RETURNING fire_time`,
      [row.id, fires, reason, handling, runId],
    );
    this.deps.log.info(
      { scheduleId: row.id, reason, handling, fires: fires.length, firstFireTime: fires[0] },
      'schedule fire recorded without a run of its own',
    );
    if (inserted.length === 0 || details === null) return;
    const action = reason === 'misfire' ? 'schedule.misfire' : handling === 'queued' ? 'schedule.fire_queued' : 'schedule.fire_skipped';
    await this.deps.audit.append({
      actor: `schedule:${row.id}`,
      action,
      target: `schedule:${row.id}`,
      outcome: 'success',
      details: {
        scheduleId: row.id,
        reason,
        handling,
        policy: reason === 'misfire' ? row.misfire_policy : reason === 'overlap' ? row.overlap_policy : row.calendar_policy,
        fireTime: new Date(fires[0]!).toISOString(),
        lastFireTime: new Date(fires.at(-1)!).toISOString(),
        runId,
        ...details,
      },
    });
  }

  /** The fires of a schedule that made no run of their own, newest first. */
  async fireRecords(ref: string, limit = 200): Promise<FireRecord[]> {
    const { id } = await this.row(ref);
    const rows = await this.deps.db.query<{
      fire_time: Date;
      reason: FireRecord['reason'];
      handling: FireRecord['handling'];
      run_id: string | null;
      recorded_at: Date;
    }>('SELECT * FROM schedule_fire_records WHERE schedule_id = $1 ORDER BY fire_time DESC, reason LIMIT $2', [id, limit]);
    return rows.map((r) => ({
      fireTime: r.fire_time.toISOString(),
      reason: r.reason,
      handling: r.handling,
      runId: r.run_id,
      recordedAt: r.recorded_at.toISOString(),
    }));
  }

  /**
   * The next `count` fires of a schedule after `afterMs`, in its zone and in UTC, computed by the
   * same rules as the scheduler (for an interval schedule: from its next pending fire).
   */
  async nextFires(ref: string, count: number, afterMs = Date.now()): Promise<NextFires> {
    const row = await this.row(ref);
    const calendar = row.calendar ? await this.calendars.get(row.calendar) : undefined;
    const fires: number[] = [];
    if (row.cron !== null) {
      let t = afterMs;
      while (fires.length < count) {
        const next = nextFire({ cron: row.cron, timeZone: row.time_zone, calendar, calendarPolicy: row.calendar_policy ?? undefined }, t);
        if (next === undefined) break;
        fires.push(next);
        t = next;
      }
    } else {
      const scheduler = await this.schedulerOf(row.id);
      let t = scheduler?.next ?? afterMs + row.every_seconds! * 1000;
      for (let i = 0; fires.length < count && i < count * 400; i++, t += row.every_seconds! * 1000) {
        if (!calendar || isWorkingInstant(calendar, t)) fires.push(t);
      }
    }
    return {
      scheduleId: row.id,
      timeZone: row.time_zone,
      fires: fires.map((ms) => ({ local: formatLocal(row.time_zone, ms), utc: new Date(ms).toISOString() })),
    };
  }

  /** Creates the run of one fire with the fire's idempotency key (the run-creating part of `fire`). */
  private async createRun(row: ScheduleRow, fireTimeMs: number, finalAttempt: boolean): Promise<FireOutcome> {
    const scheduleId = row.id;
    const key = fireIdempotencyKey(scheduleId, fireTimeMs);
    try {
      const input = (await this.deps.cipher.open(row.input_sealed, inputAad(scheduleId))) as Record<string, unknown>;
      const [outcome] = await this.deps.runs.create([
        {
          bot: row.bot_name as BotName,
          ...(row.bot_version ? { version: row.bot_version as BotVersion } : {}),
          segment: row.segment as SegmentName,
          input,
          idempotencyKey: key,
        },
      ]);
      const { run, created } = outcome!;
      await this.deps.db.query(
        `UPDATE schedules SET last_fired_at = GREATEST(last_fired_at, to_timestamp($2::double precision / 1000)), last_error_code = NULL WHERE id = $1`,
        [scheduleId, fireTimeMs],
      );
      if (created) {
        // A run created by no HTTP request: the schedule is the actor (invariant 5).
        await this.deps.audit.append({
          actor: `schedule:${scheduleId}`,
          action: 'schedule.fire',
          target: run.id,
          outcome: 'success',
          details: {
            scheduleId,
            fireTime: new Date(fireTimeMs).toISOString(),
            bot: run.bot,
            version: run.version,
            segment: run.segment,
            createdBy: row.created_by,
          },
        });
      }
      this.deps.log.info({ scheduleId, runId: run.id, fireTime: fireTimeMs, created }, 'schedule fired');
      return created ? { kind: 'created', run } : { kind: 'duplicate', run };
    } catch (err) {
      // Another delivery of this fire made its run while a newer version was published in
      // between (the key's run has another version): the fire already has its run.
      if (isOrderlyError(err) && err.code === 'ORDERLY_E_IDEMPOTENCY_KEY_REUSED') {
        this.deps.log.info({ scheduleId, fireTime: fireTimeMs }, 'schedule fire already has its run');
        return { kind: 'duplicate' };
      }
      const code = isOrderlyError(err) ? err.code : 'ORDERLY_E_INTERNAL';
      const retryable = isOrderlyError(err) ? err.retryable : true;
      if (!retryable || finalAttempt) await this.fireFailed(row, fireTimeMs, code);
      else this.deps.log.warn({ scheduleId, fireTime: fireTimeMs, code }, 'schedule fire failed; retrying');
      return { kind: 'failed', code, retryable };
    }
  }

  /** A fire given up: logged (code only, never the message, which may quote input) and audited. */
  private async fireFailed(row: ScheduleRow, fireTimeMs: number, code: string): Promise<void> {
    this.deps.log.warn({ scheduleId: row.id, fireTime: fireTimeMs, code }, 'schedule fire failed; no run was created');
    await this.deps.db.query('UPDATE schedules SET last_error_code = $2 WHERE id = $1', [row.id, code]).catch(() => undefined);
    await this.deps.audit.append({
      actor: `schedule:${row.id}`,
      action: 'schedule.fire_failed',
      target: `schedule:${row.id}`,
      outcome: 'failure',
      details: { scheduleId: row.id, fireTime: new Date(fireTimeMs).toISOString(), bot: row.bot_name, version: row.bot_version, segment: row.segment, code },
    });
  }
}
