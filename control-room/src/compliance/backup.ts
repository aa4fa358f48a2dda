import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';

/**
 * Encrypted backups of the control room's PostgreSQL database, which holds everything a restore
 * needs: runs, package blobs, credentials metadata and the audit chain. One file:
 *
 *   "ORDERLY-BACKUP v1\n" | u32 header length | header JSON | AES-256-GCM ciphertext | 16-byte tag
 *
 * The header (algorithm, key id, IV) is the GCM associated data, so it cannot be altered either.
 * The plaintext is `u32 manifest length | manifest JSON | pg_dump custom-format archive`; the
 * manifest carries the dump's sha256, the sha256 of every package blob and the row counts a
 * restore must reproduce. Any change to the file fails the GCM tag or the manifest: the restore is
 * refused with ORDERLY_E_BACKUP_TAMPERED before anything is written to the target database.
 */

const MAGIC = Buffer.from('ORDERLY-BACKUP v1\n', 'utf8');
/** Tables whose row counts the manifest records and a restore checks. */
export const COUNTED_TABLES = ['runs', 'packages', 'package_blobs', 'audit_events', 'audit_heads', 'users', 'credential_rotations'] as const;

const Header = z.strictObject({ v: z.literal(1), alg: z.literal('AES-256-GCM'), keyId: z.string().regex(/^[0-9a-f]{16}$/), iv: z.string() });
export const BackupManifest = z.strictObject({
  v: z.literal(1),
  createdAt: z.string(),
  database: z.strictObject({ format: z.literal('pg_dump-custom'), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() }),
  packages: z.array(z.strictObject({ digest: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() })),
  counts: z.record(z.string(), z.number().int().nonnegative()),
});
export type BackupManifest = z.infer<typeof BackupManifest>;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** A short, non-secret id of a backup key (so a restore with the wrong key says so). */
export const backupKeyId = (key: Buffer) => sha256(Buffer.concat([Buffer.from('orderly-backup-key:'), key])).slice(0, 16);

function run(command: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => reject(new OrderlyError('ORDERLY_E_BACKUP_FAILED', `${command} could not be started: ${e.message}`)));
    child.on('close', (code) => {
      // stderr of pg tools names tables and options, never row content.
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new OrderlyError('ORDERLY_E_BACKUP_FAILED', `${command} exited ${code}: ${Buffer.concat(err).toString('utf8').slice(0, 500)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

async function withClient<T>(databaseUrl: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function inventory(c: Client): Promise<Pick<BackupManifest, 'packages' | 'counts'>> {
  const blobs = await c.query<{ digest: string; bytes: Buffer }>('SELECT digest, bytes FROM package_blobs ORDER BY digest');
  const counts: Record<string, number> = {};
  for (const table of COUNTED_TABLES) counts[table] = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);
  return { packages: blobs.rows.map((b) => ({ digest: b.digest, sha256: sha256(b.bytes), bytes: b.bytes.length })), counts };
}

/** Dumps the database and seals it with `key` (32 bytes) into one archive. */
export async function createBackup(options: { databaseUrl: string; key: Buffer; now?: Date }): Promise<{ archive: Buffer; manifest: BackupManifest }> {
  if (options.key.length !== 32) throw new OrderlyError('ORDERLY_E_BACKUP_INVALID', 'the backup key must be 32 bytes');
  // The inventory and the dump read one exported snapshot, so the manifest's counts are exactly
  // what the dump holds even while the control room keeps writing.
  const { manifestBase, dump } = await withClient(options.databaseUrl, async (c) => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
    const base = await inventory(c);
    const dumped = await run('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', `--snapshot=${snapshot}`, `--dbname=${options.databaseUrl}`]);
    await c.query('COMMIT');
    return { manifestBase: base, dump: dumped };
  });
  const manifest: BackupManifest = {
    v: 1,
    createdAt: (options.now ?? new Date()).toISOString(),
    database: { format: 'pg_dump-custom', sha256: sha256(dump), bytes: dump.length },
    ...manifestBase,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(manifestBytes.length);
  const plaintext = Buffer.concat([length, manifestBytes, dump]);
  const iv = randomBytes(12);
  const header = Buffer.from(JSON.stringify({ v: 1, alg: 'AES-256-GCM', keyId: backupKeyId(options.key), iv: iv.toString('base64') }), 'utf8');
  const headerLength = Buffer.alloc(4);
  headerLength.writeUInt32BE(header.length);
  const aad = Buffer.concat([MAGIC, headerLength, header]);
  const cipher = createCipheriv('aes-256-gcm', options.key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { archive: Buffer.concat([aad, ciphertext, cipher.getAuthTag()]), manifest };
}

/** Decrypts and checks an archive without touching any database. */
export function openBackup(archive: Buffer, key: Buffer): { manifest: BackupManifest; dump: Buffer } {
  if (archive.length < MAGIC.length + 4 + 16 || !archive.subarray(0, MAGIC.length).equals(MAGIC))
    throw new OrderlyError('ORDERLY_E_BACKUP_INVALID', 'not an Orderly backup archive');
  const headerLength = archive.readUInt32BE(MAGIC.length);
  const headerEnd = MAGIC.length + 4 + headerLength;
  if (headerEnd + 16 > archive.length) throw new OrderlyError('ORDERLY_E_BACKUP_TAMPERED', 'the archive is truncated');
  let header: z.infer<typeof Header>;
  try {
    header = Header.parse(JSON.parse(archive.subarray(MAGIC.length + 4, headerEnd).toString('utf8')));
  } catch {
    throw new OrderlyError('ORDERLY_E_BACKUP_TAMPERED', 'the archive header is not valid');
  }
  if (header.keyId !== backupKeyId(key))
    throw new OrderlyError('ORDERLY_E_BACKUP_WRONG_KEY', `the archive was sealed with backup key ${header.keyId}, not ${backupKeyId(key)}`);
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(header.iv, 'base64'));
    decipher.setAAD(archive.subarray(0, headerEnd));
    decipher.setAuthTag(archive.subarray(archive.length - 16));
    plaintext = Buffer.concat([decipher.update(archive.subarray(headerEnd, archive.length - 16)), decipher.final()]);
  } catch {
    throw new OrderlyError('ORDERLY_E_BACKUP_TAMPERED', 'the archive does not authenticate: it was changed or truncated');
  }
  const manifestLength = plaintext.readUInt32BE(0);
  const manifest = BackupManifest.parse(JSON.parse(plaintext.subarray(4, 4 + manifestLength).toString('utf8')));
  const dump = plaintext.subarray(4 + manifestLength);
  if (sha256(dump) !== manifest.database.sha256 || dump.length !== manifest.database.bytes)
    throw new OrderlyError('ORDERLY_E_BACKUP_TAMPERED', 'the database dump does not match its manifest sha256');
  return { manifest, dump };
}

/**
 * Restores an archive into an empty database (no table in `public`), then checks that every
 * package blob and row count matches the manifest.
 */
export async function restoreBackup(options: { databaseUrl: string; key: Buffer; archive: Buffer }): Promise<BackupManifest> {
  const { manifest, dump } = openBackup(options.archive, options.key);
  const tables = await withClient(options.databaseUrl, async (c) =>
    Number((await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0]!.n),
  );
  if (tables > 0) throw new OrderlyError('ORDERLY_E_BACKUP_TARGET_NOT_EMPTY', `the target database has ${tables} tables; restore only into an empty database`);
  await run('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', `--dbname=${options.databaseUrl}`], dump);
  const restored = await withClient(options.databaseUrl, inventory);
  const expected = new Map(manifest.packages.map((p) => [p.digest, p.sha256]));
  const mismatched = restored.packages.filter((p) => expected.get(p.digest) !== p.sha256).map((p) => p.digest);
  const countsOff = Object.entries(manifest.counts)
    .filter(([table, n]) => restored.counts[table] !== n)
    .map(([table]) => table);
  if (mismatched.length > 0 || countsOff.length > 0 || restored.packages.length !== manifest.packages.length) {
    throw new OrderlyError(
      'ORDERLY_E_BACKUP_FAILED',
      `the restored database differs from the manifest (blobs: ${mismatched.join(', ') || 'ok'}; tables: ${countsOff.join(', ') || 'ok'})`,
    );
  }
  return manifest;
}
