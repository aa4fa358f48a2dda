import { randomUUID } from 'node:crypto';
import {
  canonicalJson,
  CreateRunRequest,
  ErrorBody,
  hasCode,
  IdempotencyKey,
  isTerminal,
  OrderlyError,
  RUN_STATUSES,
  runQueueName,
  RunStatus,
  SegmentName,
} from '@orderly/shared';
import type { KeyedHasher } from '../audit/keyed-hash';
import type { Db, Queryable } from '../db/db';
import type { RunCancellation } from '../runs/cancel';
import type { RunQueues } from '../runs/queues';
import type { Runs } from '../runs/runs';
import { checkItemCount, parseItems, ParsedItem, typeCsvItems } from '@orderly/shared';
import type {
  BatchDetailView,
  BatchItemView,
  BatchProgress,
  BatchState,
  BatchStateAnswer,
  BatchView,
  CreateBatchAnswer,
  CreateBatchRequest,
  ExportRow,
} from '@orderly/shared';

export interface BatchesDeps {
  db: Db;
  /** The one way runs are created (`runs/creation.ts`); a batch adds its rows in the same transaction. */
  runs: Runs;
  /** Keyed hash for item keys (they may be member ids): the run keys and batch key never hold them. */
  hash: KeyedHasher;
  /** Pause withdraws queued jobs and resume queues them again; without these the two are refused. */
  queues?: RunQueues | undefined;
  /** The one way a run is cancelled (`runs/cancel.ts`): a batch's cancel goes through it run by run. */
  cancellation?: RunCancellation | undefined;
}

/** Results are exported this many items at a time (one query, one audit event each, then written out). */
export const EXPORT_PAGE_SIZE = 200;

interface BatchRow {
  id: string;
  batch_key: string;
  bot_name: string;
  bot_version: string;
  segment: string;
  key_column: string | null;
  item_count: number;
  created_by: string;
  created_at: Date;
  state: BatchState;
  counts: Partial<Record<RunStatus, number>> | null;
}

interface ItemRow {
  position: number;
  line: number | null;
  item_key: string;
  run_id: string;
  idempotency_key: string;
  retries: number;
  status: RunStatus;
  attempts: number;
  finished_at: Date | null;
  error: ErrorBody | null;
}

const hex = (hashed: string) => hashed.replace(/^hmac:/, '');
const isUniqueViolation = (err: unknown) => (err as { code?: unknown }).code === '23505';

/** The item key of each item: its `keyColumn` value, or the item itself; missing and duplicate keys refused. */
export function itemKeys(items: readonly ParsedItem[], keyColumn: string | undefined): string[] {
  const where = (p: ParsedItem, i: number) => (p.line > 0 ? `line ${p.line}` : `item ${i + 1}`);
  if (keyColumn !== undefined && !items.some((p) => Object.hasOwn(p.item, keyColumn))) {
    throw new OrderlyError('ORDERLY_E_BATCH_KEY_MISSING', `no item has the key column ${JSON.stringify(keyColumn)}`, { keyColumn });
  }
  const seen = new Map<string, number>();
  return items.map((p, i) => {
    let key: string;
    if (keyColumn === undefined) {
      key = canonicalJson(p.item);
    } else {
      const value = p.item[keyColumn];
      if ((typeof value !== 'string' && typeof value !== 'number') || String(value).trim() === '') {
        throw new OrderlyError('ORDERLY_E_BATCH_KEY_MISSING', `${where(p, i)} has no value in the key column ${JSON.stringify(keyColumn)}`, {
          keyColumn,
          line: p.line,
          item: i,
        });
      }
      key = String(value);
    }
    const first = seen.get(key);
    if (first !== undefined) {
      const what = keyColumn === undefined ? 'is identical to' : `has the same ${JSON.stringify(keyColumn)} as`;
      throw new OrderlyError('ORDERLY_E_BATCH_KEY_DUPLICATE', `${where(p, i)} ${what} ${where(items[first]!, first)}`, {
        line: p.line,
        item: i,
        firstLine: items[first]!.line,
        firstItem: first,
      });
    }
    seen.set(key, i);
    return key;
  });
}

function progressOf(total: number, counts: Partial<Record<RunStatus, number>>): BatchProgress {
  const all = Object.fromEntries(RUN_STATUSES.map((s) => [s, counts[s] ?? 0])) as Record<RunStatus, number>;
  const done = RUN_STATUSES.filter((s) => isTerminal(s) || s === 'dead_lettered').reduce((n, s) => n + all[s], 0);
  return { total, counts: all, done, percent: total === 0 ? 100 : Math.floor((done / total) * 1000) / 10 };
}

const BATCH_SELECT = `
  SELECT b.*, (SELECT json_object_agg(s.status, s.n) FROM (
    SELECT r.status, count(*)::int AS n FROM batch_items i JOIN runs r ON r.id = i.run_id WHERE i.batch_id = b.id GROUP BY r.status) s) AS counts
  FROM batches b`;

/**
 * Work queues of items: a batch is one run per item of a file, created through `Runs.create` (one
 * transaction with the batch's rows), so a file loaded twice creates each run once.
 */
export class Batches {
  constructor(private readonly deps: BatchesDeps) {}

  /** The idempotency key of an item's first run: the bot and the item key, keyed-hashed. */
  runKey(bot: string, itemKey: string): IdempotencyKey {
    return `batch-${hex(this.deps.hash(canonicalJson(['batch-item', bot, itemKey])))}` as IdempotencyKey;
  }

  async create(request: CreateBatchRequest, actor: string): Promise<CreateBatchAnswer> {
    let items: ParsedItem[] = request.items
      ? request.items.map((item) => ({ line: 0, item }))
      : parseItems(request.csv !== undefined ? 'csv' : 'jsonl', request.csv ?? request.jsonl ?? '');
    if (items.length === 0) throw new OrderlyError('ORDERLY_E_BATCH_ITEMS_INVALID', 'a batch needs at least one item');
    checkItemCount(items.length);
    // Keys from the cells as written (typing `007` as 7 must not change an item's key).
    const keys = itemKeys(items, request.keyColumn).map((k) => this.runKey(request.bot, k));
    if (request.csv !== undefined) items = typeCsvItems(items, await this.deps.runs.inputSchemaOf(request));
    const batchKey = this.deps.hash(canonicalJson(['batch', request.bot, request.version ?? null, request.segment ?? null, request.keyColumn ?? null, keys]));

    const existing = await this.byKey(batchKey);
    if (existing) return { batch: existing, created: false, runsCreated: 0, runsExisting: existing.progress.total };

    const id = randomUUID();
    const runRequests: CreateRunRequest[] = items.map((p, i) => ({
      bot: request.bot,
      input: p.item,
      idempotencyKey: keys[i]!,
      ...(request.version ? { version: request.version } : {}),
      ...(request.segment ? { segment: request.segment } : {}),
    }));
    let created = 0;
    try {
      await this.deps.runs.create(runRequests, {
        inTransaction: async (tx, runs) => {
          created = runs.filter((r) => r.created).length;
          const [first] = await tx.query<{ bot_version: string; segment: string }>('SELECT bot_version, segment FROM runs WHERE id = $1', [runs[0]!.runId]);
          await tx.query(
            `INSERT INTO batches (id, batch_key, bot_name, bot_version, segment, key_column, item_count, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
            [id, batchKey, request.bot, first!.bot_version, first!.segment, request.keyColumn ?? null, items.length, actor],
          );
          await this.insertItems(
            tx,
            id,
            items,
            keys,
            runs.map((r) => r.runId),
          );
        },
      });
    } catch (err) {
      // A refused item is named by its line in the file.
      if (err instanceof OrderlyError && typeof err.details.item === 'number' && (items[err.details.item]?.line ?? 0) > 0) {
        const line = items[err.details.item]!.line;
        throw new OrderlyError(err.code, err.message.replace(/^item \d+: /, `line ${line}: `), { ...err.details, line });
      }
      // The same file loaded concurrently: the other load made the batch (and the runs).
      if (!isUniqueViolation(err)) throw err;
      const other = await this.byKey(batchKey);
      if (!other) throw err;
      return { batch: other, created: false, runsCreated: 0, runsExisting: other.progress.total };
    }
    return { batch: (await this.byKey(batchKey))!, created: true, runsCreated: created, runsExisting: items.length - created };
  }

  private async insertItems(tx: Queryable, batchId: string, items: readonly ParsedItem[], keys: readonly string[], runIds: readonly string[]): Promise<void> {
    await tx.query(
      `INSERT INTO batch_items (batch_id, position, line, item_key, run_id)
       SELECT $1, p, l, k, r FROM unnest($2::int[], $3::int[], $4::text[], $5::uuid[]) AS t(p, l, k, r)`,
      [batchId, items.map((_, i) => i + 1), items.map((p) => (p.line > 0 ? p.line : null)), keys, runIds],
    );
  }

  private async byKey(batchKey: string): Promise<BatchView | undefined> {
    const [row] = await this.deps.db.query<BatchRow>(`${BATCH_SELECT} WHERE b.batch_key = $1`, [batchKey]);
    return row ? this.view(row) : undefined;
  }

  private view(row: BatchRow): BatchView {
    return {
      id: row.id,
      state: row.state,
      bot: row.bot_name,
      version: row.bot_version,
      segment: row.segment,
      keyColumn: row.key_column,
      createdBy: row.created_by,
      createdAt: row.created_at.toISOString(),
      progress: progressOf(row.item_count, row.counts ?? {}),
    };
  }

  /** A batch's row; a malformed id is a bad request, a missing batch not found. */
  async get(id: string): Promise<BatchView> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'batch ids are UUIDs');
    const [row] = await this.deps.db.query<BatchRow>(`${BATCH_SELECT} WHERE b.id = $1`, [id]);
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no batch ${id}`);
    return this.view(row);
  }

  /** The batch and each item's outcome (state, attempts, error code), never its input or result. */
  async detail(id: string): Promise<BatchDetailView> {
    const batch = await this.get(id);
    const rows = await this.itemRows(id);
    return { ...batch, items: rows.map(itemView) };
  }

  private itemRows(batchId: string, statuses?: readonly RunStatus[]): Promise<ItemRow[]> {
    return this.deps.db.query<ItemRow>(
      `SELECT i.position, i.line, i.item_key, i.run_id, r.idempotency_key, i.retries, r.status, r.attempts, r.finished_at, r.error
       FROM batch_items i JOIN runs r ON r.id = i.run_id WHERE i.batch_id = $1 AND ($2::text[] IS NULL OR r.status = ANY($2)) ORDER BY i.position`,
      [batchId, statuses ? [...statuses] : null],
    );
  }

  /** Batches newest first; `segments` (when given) narrows to the caller's bindings. */
  async list(filter: { limit: number; segments?: readonly string[] | undefined }): Promise<BatchView[]> {
    const rows = await this.deps.db.query<BatchRow>(`${BATCH_SELECT} WHERE ($1::text[] IS NULL OR b.segment = ANY($1)) ORDER BY b.created_at DESC LIMIT $2`, [
      filter.segments ? [...filter.segments] : null,
      filter.limit,
    ]);
    return rows.map((r) => this.view(r));
  }

  /** Each item's input and result (PHI: the route checks the permission and audits each run). */
  async results(id: string): Promise<{ position: number; line: number | null; runId: string; status: RunStatus; input: unknown; result: unknown }[]> {
    const rows = await this.itemRows(id);
    return Promise.all(
      rows.map(async (r) => ({ position: r.position, line: r.line, runId: r.run_id, status: r.status, ...(await this.deps.runs.readPhi(r.run_id)) })),
    );
  }

  /**
   * Runs the items whose run failed or was dead-lettered again, each as a new run (its item key
   * with `.rN`), the batch pointing at the new runs; all or nothing. A dead letter stays in the
   * dead-letter queue (discard it there so it is not requeued as well).
   */
  async retryFailed(id: string): Promise<{ position: number; runId: string }[]> {
    const batch = await this.get(id);
    if (batch.state !== 'open') throw stateConflict(batch.state, 'retry');
    const failed = await this.itemRows(id, ['failed', 'dead_lettered']);
    if (failed.length === 0) return [];
    const requests: CreateRunRequest[] = [];
    for (const row of failed) {
      const { input } = await this.deps.runs.readPhi(row.run_id);
      requests.push({
        bot: batch.bot as CreateRunRequest['bot'],
        version: batch.version as CreateRunRequest['version'],
        segment: batch.segment as CreateRunRequest['segment'],
        input: input as Record<string, unknown>,
        idempotencyKey: `${row.item_key}.r${row.retries + 1}` as IdempotencyKey,
      });
    }
    let moved: { position: number; runId: string }[] = [];
    await this.deps.runs.create(requests, {
      inTransaction: async (tx, runs) => {
        moved = failed.map((row, i) => ({ position: row.position, runId: runs[i]!.runId }));
        // Only items still on the run this retry read: a concurrent retry moved the others.
        const updated = await tx.query(
          `UPDATE batch_items i SET run_id = t.r, retries = i.retries + 1 FROM unnest($2::int[], $3::uuid[], $4::uuid[]) AS t(p, r, old)
           WHERE i.batch_id = $1 AND i.position = t.p AND i.run_id = t.old RETURNING i.position`,
          [id, moved.map((m) => m.position), moved.map((m) => m.runId), failed.map((f) => f.run_id)],
        );
        if (updated.length !== failed.length) throw new OrderlyError('ORDERLY_E_BATCH_CONFLICT', 'another retry of this batch moved its failed items first');
      },
    });
    return moved;
  }

  /**
   * Each item's key (the key column's value, read from its input), state, error code and result,
   * a page at a time in file order. A PHI read: `beforePage` (the route's audit of each run) runs
   * before a page is handed out, so nothing leaves unaudited.
   */
  async *exportPages(id: string, beforePage: (runIds: readonly string[]) => Promise<void>, pageSize = EXPORT_PAGE_SIZE): AsyncGenerator<ExportRow[]> {
    const batch = await this.get(id);
    let after = 0;
    for (;;) {
      const rows = await this.deps.db.query<{ position: number; line: number | null; run_id: string; status: RunStatus; error: ErrorBody | null }>(
        `SELECT i.position, i.line, i.run_id, r.status, r.error FROM batch_items i JOIN runs r ON r.id = i.run_id
         WHERE i.batch_id = $1 AND i.position > $2 ORDER BY i.position LIMIT $3`,
        [id, after, pageSize],
      );
      if (rows.length === 0) return;
      const page = await Promise.all(
        rows.map(async (r): Promise<ExportRow> => {
          const { input, result } = await this.deps.runs.readPhi(r.run_id);
          const keyValue = batch.keyColumn === null ? undefined : (input as Record<string, unknown> | null)?.[batch.keyColumn];
          return {
            position: r.position,
            line: r.line,
            key: keyValue === undefined || keyValue === null ? null : String(keyValue),
            runId: r.run_id,
            status: r.status,
            errorCode: r.error?.code ?? null,
            result: result ?? null,
          };
        }),
      );
      await beforePage(page.map((p) => p.runId));
      yield page;
      after = rows[rows.length - 1]!.position;
    }
  }

  /** Moves the batch from `from` to `to`, answering the state it was in; refused from any other state. */
  private async moveState(
    id: string,
    from: readonly BatchState[],
    to: BatchState,
    actor: string,
    action: string,
  ): Promise<{ batch: BatchView; previous: BatchState }> {
    const batch = await this.get(id);
    const [moved] = await this.deps.db.query<{ previous: BatchState }>(
      `UPDATE batches b SET state = $3, state_changed_at = now(), state_changed_by = $4
       FROM (SELECT id, state AS previous FROM batches WHERE id = $1 FOR UPDATE) old
       WHERE b.id = old.id AND old.previous = ANY($2) RETURNING old.previous`,
      [id, [...from], to, actor],
    );
    if (!moved) throw stateConflict((await this.get(id)).state, action);
    return { batch, previous: moved.previous };
  }

  private control(): { queues: RunQueues; cancellation: RunCancellation } {
    const { queues, cancellation } = this.deps;
    if (!queues || !cancellation) throw new OrderlyError('ORDERLY_E_INTERNAL', 'batch control is not wired in this control room');
    return { queues, cancellation };
  }

  /**
   * Pauses an open batch: its waiting runs are not started (every claim reads the batch's state,
   * `runs/claim.ts`), and their queued jobs are withdrawn so runners do not pick them up meanwhile.
   * Active runs go on to their end.
   */
  async pause(id: string, actor: string): Promise<BatchStateAnswer> {
    const { queues } = this.control();
    const { batch, previous } = await this.moveState(id, ['open'], 'paused', actor, 'pause');
    let withdrawn = 0;
    for (const row of await this.itemRows(id, ['waiting'])) {
      // 0 for a job a runner holds: its claim is refused (the batch is paused) and the job dropped.
      const removed = await queues
        .queue(runQueueName(batch.segment as SegmentName))
        .remove(queues.jobIdOf(row.idempotency_key))
        .catch(() => 0);
      withdrawn += removed === 1 ? 1 : 0;
    }
    return { batchId: id, state: 'paused', previous, runs: withdrawn };
  }

  /** Resumes a paused batch: each waiting run's job is queued afresh (a dropped or expired one replaced). */
  async resume(id: string, actor: string): Promise<BatchStateAnswer> {
    const { queues } = this.control();
    const { batch, previous } = await this.moveState(id, ['paused'], 'open', actor, 'resume');
    const waiting = await this.itemRows(id, ['waiting']);
    const queue = queues.queue(runQueueName(batch.segment as SegmentName));
    // A job a runner dropped while the batch was paused is kept as done under the same id: removed
    // first, or the new add would be a no-op.
    for (const row of waiting) await queue.remove(queues.jobIdOf(row.idempotency_key)).catch(() => 0);
    await this.deps.runs.enqueueFresh(waiting.map((r) => r.run_id));
    return { batchId: id, state: 'open', previous, runs: waiting.length };
  }

  /**
   * Cancels a batch: no run of it is started any more, and each waiting or active run is cancelled
   * through the run cancel path (`RunCancellation`). Cancelling again cancels what is left (a
   * cancel interrupted half way is finished by repeating it).
   */
  async cancel(id: string, actor: string): Promise<BatchStateAnswer> {
    const { cancellation } = this.control();
    const { previous } = await this.moveState(id, ['open', 'paused', 'cancelled'], 'cancelled', actor, 'cancel');
    let cancelled = 0;
    for (const row of await this.itemRows(id, ['waiting', 'active'])) {
      try {
        await cancellation.cancel(row.run_id);
        cancelled++;
      } catch (err) {
        // It ended in the meantime: nothing left to cancel.
        if (!hasCode(err, 'ORDERLY_E_RUN_NOT_CANCELLABLE')) throw err;
      }
    }
    return { batchId: id, state: 'cancelled', previous, runs: cancelled };
  }
}

const stateConflict = (state: BatchState, action: string) =>
  new OrderlyError('ORDERLY_E_BATCH_STATE_CONFLICT', `the batch is ${state}: it cannot ${action}`, { state, action });

function itemView(r: ItemRow): BatchItemView {
  return {
    position: r.position,
    line: r.line,
    runId: r.run_id,
    retries: r.retries,
    status: r.status,
    attempts: r.attempts,
    finishedAt: r.finished_at?.toISOString() ?? null,
    ...(r.error ? { error: r.error } : {}),
  };
}
