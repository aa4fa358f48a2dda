import { BotName, ErrorBody, IdempotencyKey, LogLine, OrderlyError, PackageDigest, RunId, RunStatus, RunView, SegmentName } from '@orderly/shared';
import { Db } from '../db/db';
import { AtRestBox, AtRestCipher } from '../keys/at-rest';

/** A `runs` row as the queries here read it. */
export interface RunRow {
  id: string;
  idempotency_key: string;
  request_mac: string;
  bot_name: string;
  bot_version: string;
  digest: string;
  segment: string;
  status: RunStatus;
  /** Null only once `phi_purged_at` is set, which only a finished run's retention purge does. */
  input_sealed: AtRestBox;
  attempts: number;
  max_attempts: number;
  result_sealed: AtRestBox | null;
  error: ErrorBody | null;
  publisher_key_id?: string;
  flags?: string[];
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  /** When the retention purge emptied the run's PHI (input, result, steps, screenshots, logs). */
  phi_purged_at?: Date | null;
}

/** Additional data bound to a run's sealed input and result. */
export const inputAad = (runId: string) => `run-input:${runId}`;
export const resultAad = (runId: string) => `run-result:${runId}`;

/** A PHI read of a run whose PHI the retention purge removed is refused, not answered with nothing. */
function refusePurged(row: RunRow): void {
  if (row.phi_purged_at) {
    throw new OrderlyError('ORDERLY_E_RUN_PHI_PURGED', `run ${row.id} finished longer ago than the run retention: its input, result and logs were purged`, {
      runId: row.id,
      phiPurgedAt: new Date(row.phi_purged_at).toISOString(),
    });
  }
}

/** Read-only queries of runs: views, lists, PHI reads, logs. Nothing here changes a run. */
export class RunRepository {
  constructor(
    private readonly db: Db,
    private readonly cipher: AtRestCipher,
  ) {}

  async view(row: RunRow, withResult: boolean): Promise<RunView> {
    const view: RunView = {
      id: row.id as RunId,
      idempotencyKey: row.idempotency_key as IdempotencyKey,
      bot: row.bot_name as BotName,
      version: row.bot_version as RunView['version'],
      digest: row.digest as PackageDigest,
      segment: row.segment as SegmentName,
      status: row.status,
      attempts: row.attempts,
      createdAt: row.created_at.toISOString(),
      startedAt: row.started_at?.toISOString() ?? null,
      finishedAt: row.finished_at?.toISOString() ?? null,
    };
    if (row.error) view.error = row.error;
    if (row.flags && row.flags.length > 0) view.flags = row.flags;
    if (withResult && row.result_sealed) view.result = await this.cipher.open(row.result_sealed, resultAad(row.id));
    return view;
  }

  /** The row of run `id`; a malformed id is a bad request, a missing run not found. */
  async row(id: string): Promise<RunRow> {
    if (!RunId.safeParse(id).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'run ids are UUIDs');
    const rows = await this.db.query<RunRow>('SELECT * FROM runs WHERE id = $1', [id]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${id}`);
    return rows[0];
  }

  async get(id: string): Promise<RunView> {
    return this.view(await this.row(id), true);
  }

  /** Runs newest first, never with results; `segments` (when given) narrows to the caller's bindings. */
  async list(filter: { status?: RunStatus | undefined; limit: number; segments?: readonly string[] | undefined }): Promise<RunView[]> {
    const rows = await this.db.query<RunRow>(
      'SELECT * FROM runs WHERE ($1::text IS NULL OR status = $1) AND ($2::text[] IS NULL OR segment = ANY($2)) ORDER BY created_at DESC LIMIT $3',
      [filter.status ?? null, filter.segments ? [...filter.segments] : null, filter.limit],
    );
    return Promise.all(rows.map((r) => this.view(r, false)));
  }

  /** A run's PHI: its input and result, decrypted (the PHI read routes audit each call). */
  async readPhi(id: string): Promise<{ input: unknown; result: unknown }> {
    const row = await this.row(id);
    refusePurged(row);
    const input = await this.cipher.open(row.input_sealed, inputAad(row.id));
    const result = row.result_sealed ? await this.cipher.open(row.result_sealed, resultAad(row.id)) : null;
    return { input, result };
  }

  async logs(id: string): Promise<LogLine[]> {
    refusePurged(await this.row(id));
    const rows = await this.db.query<{ seq: number; attempt: number; at: Date; level: LogLine['level']; source: LogLine['source']; msg: string }>(
      'SELECT * FROM run_logs WHERE run_id = $1 ORDER BY attempt, seq',
      [id],
    );
    return rows.map((r) => ({ seq: r.seq, at: r.at.toISOString(), level: r.level, source: r.source, msg: r.msg }));
  }

  /** Waiting runs whose job never reached Redis, created over `olderThanMs` ago, oldest first. */
  pendingEnqueue(olderThanMs: number): Promise<RunRow[]> {
    return this.db.query<RunRow>(
      `SELECT * FROM runs WHERE status = 'waiting' AND enqueued_at IS NULL AND created_at < now() - ($1::double precision * interval '1 millisecond')
       ORDER BY created_at LIMIT 500`,
      [olderThanMs],
    );
  }

  /** Those of `ids` that are waiting. */
  waiting(ids: readonly string[]): Promise<RunRow[]> {
    return this.db.query<RunRow>("SELECT * FROM runs WHERE id = ANY($1) AND status = 'waiting'", [ids]);
  }

  async publisherKeyIds(digests: string[]): Promise<Map<string, string>> {
    const rows = await this.db.query<{ digest: string; publisher_key_id: string }>('SELECT digest, publisher_key_id FROM packages WHERE digest = ANY($1)', [
      [...new Set(digests)],
    ]);
    return new Map(rows.map((r) => [r.digest, r.publisher_key_id]));
  }
}
