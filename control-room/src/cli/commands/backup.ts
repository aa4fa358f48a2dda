import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { Command } from 'commander';
// The database and backup modules load only in the action that needs them: the CLI starts light.
import { OrderlyError } from '@orderly/shared';
import { join } from 'node:path';
import { loadPrivateKey } from '@orderly/shared';
import { loadControlRoomConfig } from '../../config';
import { output } from '../output';

/** Reads the 32-byte backup key (base64); `create` makes one (0600) when the file does not exist. */
function backupKey(file: string, createIfMissing: boolean): Buffer {
  if (!existsSync(file)) {
    if (!createIfMissing) throw new OrderlyError('ORDERLY_E_BACKUP_INVALID', `no backup key at ${file}`);
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    process.stderr.write(`created backup key ${file}: keep it apart from the backups (without it they cannot be restored)\n`);
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new OrderlyError('ORDERLY_E_BACKUP_INVALID', `${file} does not hold a base64 32-byte key`);
  return key;
}

function databaseUrl(override: string | undefined): string {
  const url = override ?? loadControlRoomConfig().databaseUrl;
  if (!url)
    throw new OrderlyError(
      'ORDERLY_E_BACKUP_INVALID',
      'backups need PostgreSQL (DATABASE_URL); the embedded PGlite database is backed up by copying its data directory while the control room is stopped',
    );
  return url;
}

/** `orderly backup create|restore`: runs on the control room's host, with its configuration (DATABASE_URL). */
export function backupCommand(): Command {
  const backup = new Command('backup').description('encrypted backups of the control room database (runs, packages, audit chain) and their restore');
  backup
    .command('create')
    .description('dump the database into one AES-256-GCM archive with a sha256 manifest; records the backup as compliance evidence')
    .requiredOption('--out <file>', 'archive to write (mode 0600)')
    .requiredOption('--key-file <file>', 'base64 32-byte backup key; created when missing')
    .option('--database-url <url>', 'instead of DATABASE_URL')
    .option('--json', 'the manifest as JSON')
    .action(async (opts: { out: string; keyFile: string; databaseUrl?: string; json?: boolean }) => {
      const url = databaseUrl(opts.databaseUrl);
      const key = backupKey(opts.keyFile, true);
      const [{ backupKeyId, createBackup }, { openDb }, { recordEvidence }, { AuditLog }] = await Promise.all([
        import('../../compliance/backup.js'),
        import('../../db/db.js'),
        import('../../compliance/evidence.js'),
        import('../../audit/audit.js'),
      ]);
      const { archive, manifest } = await createBackup({ databaseUrl: url, key });
      writeFileSync(opts.out, archive, { mode: 0o600 });
      const db = await openDb({ databaseUrl: url, pgliteDir: '' });
      try {
        await recordEvidence(db, new AuditLog(db), 'backup', `host:${userInfo().username}`, {
          sha256: manifest.database.sha256,
          bytes: archive.length,
          packages: manifest.packages.length,
          keyId: backupKeyId(key),
        });
      } finally {
        await db.close();
      }
      output(
        opts.json,
        manifest,
        `backup written to ${opts.out} (${archive.length} bytes, ${manifest.packages.length} packages, ${manifest.counts.runs ?? 0} runs, ${manifest.counts.audit_events ?? 0} audit events; dump sha256 ${manifest.database.sha256})`,
      );
    });
  backup
    .command('restore')
    .description('restore an archive into an empty database; a changed archive is refused (ORDERLY_E_BACKUP_TAMPERED) before anything is written')
    .argument('<file>', 'archive written by `orderly backup create`')
    .requiredOption('--key-file <file>', 'the backup key the archive was sealed with')
    .option('--database-url <url>', 'instead of DATABASE_URL')
    .option('--json', 'the manifest as JSON')
    .action(async (file: string, opts: { keyFile: string; databaseUrl?: string; json?: boolean }) => {
      const { restoreBackup } = await import('../../compliance/backup.js');
      const manifest = await restoreBackup({ databaseUrl: databaseUrl(opts.databaseUrl), key: backupKey(opts.keyFile, false), archive: readFileSync(file) });
      output(
        opts.json,
        manifest,
        `restored ${manifest.packages.length} packages, ${manifest.counts.runs ?? 0} runs, ${manifest.counts.audit_events ?? 0} audit events from the backup of ${manifest.createdAt}; run \`orderly audit verify\` next`,
      );
    });
  backup
    .command('drill')
    .description('restore an archive into a scratch database, check blobs, row counts and the audit chain, drop it, and record the drill as evidence')
    .argument('<file>', 'archive written by `orderly backup create`')
    .requiredOption('--key-file <file>', 'the backup key the archive was sealed with')
    .option('--database-url <url>', 'instead of DATABASE_URL (the scratch database is created on the same server)')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { keyFile: string; databaseUrl?: string; json?: boolean }) => {
      // The release key verifies the restored chain's signed heads; it is read from the control room's secrets.
      const releaseKey = loadPrivateKey(readFileSync(join(loadControlRoomConfig().secretsDir, 'release.key'), 'utf8'));
      const { drillBackup } = await import('../../compliance/drill.js');
      const result = await drillBackup({
        databaseUrl: databaseUrl(opts.databaseUrl),
        key: backupKey(opts.keyFile, false),
        archive: readFileSync(file),
        releaseKey,
        actor: `host:${userInfo().username}`,
      });
      output(
        opts.json,
        result,
        `drill passed: ${result.manifest.packages.length} packages, ${result.manifest.counts.runs ?? 0} runs and ${result.audit.ok ? result.audit.events : 0} audit events restored and verified in a scratch database (dropped); recorded as restore_drill evidence`,
      );
    });
  return backup;
}
