import { randomUUID } from 'node:crypto';
import {
  assertMaskable, BotName, BotVersion, declaredPhiFromInput, IdempotencyKey, isOrderlyError, OrderlyError, RunView, SegmentName, validateInput,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { AuditLog } from '../audit/audit';
import { Db } from '../db/db';
import { Packages, StoredPackage } from '../packages/packages';
import { AtRestBox, AtRestCipher } from '../runs/at-rest';
import { Runs } from '../runs/runs';
import { CreateScheduleRequest, ScheduleName, ScheduleView } from './schemas';
import { SchedulerQueue, schedulerMatches, SchedulerState } from './scheduler-queue';
import { parseTiming, Timing } from './timing';

interface ScheduleRow {
  id: string;
  name: string;
  bot_name: string;
  bot_version: string | null;
  segment: string;
  input_sealed: AtRestBox;
  cron: string | null;
  every_seconds: number | null;
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
  releaseGate?: { gate(pkg: StoredPackage, segment: SegmentName): Promise<void> };
}

/** The outcome of one fire: a run (new, or the one an earlier delivery of this fire created), nothing, or a failure. */
export type FireOutcome =
  | { kind: 'created'; run: RunView }
  | { kind: 'duplicate'; run?: RunView }
  | { kind: 'skipped'; reason: 'deleted' | 'paused' }
  | { kind: 'failed'; code: string; retryable: boolean };

const inputAad = (scheduleId: string) => `schedule-input:${scheduleId}`;
/** The idempotency key of the run of one fire: the same for every delivery of that fire, so one run per fire. */
export const fireIdempotencyKey = (scheduleId: string, fireTimeMs: number) => `schedule-${scheduleId}-${fireTimeMs}` as IdempotencyKey;

const timingOf = (row: ScheduleRow): Timing => (row.cron !== null ? { kind: 'cron', cron: row.cron } : { kind: 'every', everySeconds: row.every_seconds! });
const isUuid = (ref: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);

/**
 * Schedules: operators' recurring runs. The database row is the truth; Redis holds one BullMQ
 * job scheduler per active schedule, brought in line with the row after every change (`sync`),
 * on start and at intervals (`reconcile`). A tick carries only the schedule's id; the fire opens
 * the sealed input and creates the run through `Runs.create` with a key naming schedule and fire
 * time, so however often a tick is delivered, a fire makes at most one run.
 */
export class Schedules {
  constructor(private readonly deps: SchedulesDeps) {}

  private view(row: ScheduleRow, scheduler: SchedulerState | undefined): ScheduleView {
    return {
      id: row.id,
      name: row.name,
      bot: row.bot_name,
      version: row.bot_version,
      segment: row.segment,
      cron: row.cron,
      everySeconds: row.every_seconds,
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
    if (!isUuid(ref) && !ScheduleName.safeParse(ref).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'a schedule is named by its id (UUID) or its name');
    const rows = await this.deps.db.query<ScheduleRow>(isUuid(ref) ? 'SELECT * FROM schedules WHERE id = $1' : 'SELECT * FROM schedules WHERE name = $1', [ref]);
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
    const pkg = await this.deps.packages.resolve(request.bot, request.version);
    const segment = request.segment ?? pkg.manifest.segments[0]!;
    if (!this.deps.segments.includes(segment)) {
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
    }
    if (!pkg.manifest.segments.includes(segment)) {
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `${pkg.view.name} may not run in segment ${segment}`, { segment, bot: pkg.view.name });
    }
    await this.deps.releaseGate?.gate(pkg, segment);
    const input = validateInput(pkg.manifest.input, request.input);
    assertMaskable({ phi: declaredPhiFromInput(pkg.manifest.phi, input) });

    const id = randomUUID();
    const sealed = await this.deps.cipher.seal(input, inputAad(id));
    const rows = await this.deps.db.query<ScheduleRow>(
      `INSERT INTO schedules (id, name, bot_name, bot_version, segment, input_sealed, cron, every_seconds, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING RETURNING *`,
      [id, name.data, pkg.view.name, request.version ?? null, segment, JSON.stringify(sealed),
        timing.kind === 'cron' ? timing.cron : null, timing.kind === 'every' ? timing.everySeconds : null, createdBy],
    );
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_SCHEDULE_CONFLICT', `a schedule named ${name.data} already exists`);
    // The row is committed: if Redis does not answer now, the periodic reconcile adds the scheduler.
    await this.sync(id).catch((err: Error) => this.deps.log.warn({ scheduleId: id, err: { message: err.message } }, 'schedule created; its scheduler will be added by the next reconcile'));
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
      if (existing && schedulerMatches(existing, row.id, timingOf(row))) continue;
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
  async fire(scheduleId: string, fireTimeMs: number, finalAttempt = true): Promise<FireOutcome> {
    const rows = await this.deps.db.query<ScheduleRow>('SELECT * FROM schedules WHERE id = $1', [scheduleId]);
    const row = rows[0];
    if (!row || row.paused) {
      this.deps.log.info({ scheduleId, fireTime: fireTimeMs, reason: row ? 'paused' : 'deleted' }, 'schedule tick skipped');
      await this.sync(scheduleId).catch(() => undefined);
      return { kind: 'skipped', reason: row ? 'paused' : 'deleted' };
    }
    const key = fireIdempotencyKey(scheduleId, fireTimeMs);
    try {
      const input = (await this.deps.cipher.open(row.input_sealed, inputAad(scheduleId))) as Record<string, unknown>;
      const [outcome] = await this.deps.runs.create([{
        bot: row.bot_name as BotName,
        ...(row.bot_version ? { version: row.bot_version as BotVersion } : {}),
        segment: row.segment as SegmentName,
        input,
        idempotencyKey: key,
      }]);
      const { run, created } = outcome!;
      await this.deps.db.query(
        `UPDATE schedules SET last_fired_at = GREATEST(last_fired_at, to_timestamp($2::double precision / 1000)), last_error_code = NULL WHERE id = $1`,
        [scheduleId, fireTimeMs],
      );
      if (created) {
        // A run created by no HTTP request: the schedule is the actor (invariant 5).
        await this.deps.audit.append({
          actor: `schedule:${scheduleId}`, action: 'schedule.fire', target: run.id, outcome: 'success',
          details: { scheduleId, fireTime: new Date(fireTimeMs).toISOString(), bot: run.bot, version: run.version, segment: run.segment, createdBy: row.created_by },
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
      actor: `schedule:${row.id}`, action: 'schedule.fire_failed', target: `schedule:${row.id}`, outcome: 'failure',
      details: { scheduleId: row.id, fireTime: new Date(fireTimeMs).toISOString(), bot: row.bot_name, version: row.bot_version, segment: row.segment, code },
    });
  }
}
