import { z } from 'zod';
import { OrderlyError, SegmentName } from '@orderly/shared';
import { Db } from '../db/db';
import { AtRestBox, AtRestCipher } from '../keys/at-rest';

export const ScreenshotName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, '1-64 of A-Z a-z 0-9 . _ -');
export const ScreenshotUpload = z.strictObject({ attempt: z.number().int().min(1), name: ScreenshotName, png: z.base64().max(20_000_000) });
export const ScreenshotView = z.object({
  id: z.number(),
  attempt: z.number(),
  name: z.string(),
  bytes: z.number(),
  createdAt: z.string(),
  expiresAt: z.string(),
});
export type ScreenshotView = z.infer<typeof ScreenshotView>;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const aad = (runId: string, id: string) => `run-screenshot:${runId}:${id}`;

/**
 * Screenshots of runs: masked in the bot host before they leave it, stored here encrypted at rest
 * (the same cipher as inputs and results) and deleted when their retention ends.
 */
export class Screenshots {
  constructor(
    private readonly db: Db,
    private readonly cipher: AtRestCipher,
    private readonly retentionDays: number,
  ) {}

  /** Stores a runner's upload for an active run of its own segment. */
  async store(runId: string, segment: SegmentName, upload: z.infer<typeof ScreenshotUpload>): Promise<{ id: number }> {
    const png = Buffer.from(upload.png, 'base64');
    if (!png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'a screenshot must be a PNG');
    const run = await this.db.query<{ status: string }>('SELECT status FROM runs WHERE id = $1 AND segment = $2', [runId, segment]);
    if (run[0]?.status !== 'active') throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', 'screenshots are stored for active runs of this segment only');
    // The id is taken first so the ciphertext can be bound to its own row.
    const [{ id }] = (await this.db.query<{ id: string }>("SELECT nextval(pg_get_serial_sequence('run_screenshots', 'id'))::text AS id")) as [{ id: string }];
    const sealed = await this.cipher.seal(upload.png, aad(runId, id));
    await this.db.query(
      `INSERT INTO run_screenshots (id, run_id, attempt, name, png_sealed, bytes, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + ($7::double precision * interval '1 day'))`,
      [id, runId, upload.attempt, upload.name, JSON.stringify(sealed), png.length, this.retentionDays],
    );
    return { id: Number(id) };
  }

  async list(runId: string): Promise<ScreenshotView[]> {
    const rows = await this.db.query<{ id: string; attempt: number; name: string; bytes: number; created_at: Date; expires_at: Date }>(
      'SELECT id, attempt, name, bytes, created_at, expires_at FROM run_screenshots WHERE run_id = $1 AND expires_at > now() ORDER BY id',
      [runId],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      attempt: r.attempt,
      name: r.name,
      bytes: r.bytes,
      createdAt: r.created_at.toISOString(),
      expiresAt: r.expires_at.toISOString(),
    }));
  }

  async png(runId: string, id: number): Promise<Buffer> {
    const rows = await this.db.query<{ png_sealed: AtRestBox }>('SELECT png_sealed FROM run_screenshots WHERE run_id = $1 AND id = $2 AND expires_at > now()', [
      runId,
      id,
    ]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no screenshot ${id} for run ${runId}`);
    return Buffer.from((await this.cipher.open(rows[0].png_sealed, aad(runId, String(id)))) as string, 'base64');
  }

  /** Deletes screenshots past their retention; returns how many. */
  async expire(): Promise<number> {
    return (await this.db.query('DELETE FROM run_screenshots WHERE expires_at <= now() RETURNING id')).length;
  }
}
