import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from './db';
import { ADVISORY_LOCKS } from './locks';

/**
 * Migrations are the SQL files in control-room/migrations, `NNNN_name.sql`, applied in order,
 * each whole in its own transaction, once. PostgreSQL and PGlite share them. Never edit an
 * applied migration: add a new file.
 */
export const MIGRATIONS_DIR = join(__dirname, '../../migrations');

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Reads the migration files; refuses a stray file or a gap in the numbering. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .sort()
    .map((file) => {
      const match = FILE_NAME.exec(file);
      if (!match) throw new Error(`migrations: ${file} is not named NNNN_name.sql`);
      return { id: Number(match[1]), name: match[2]!, sql: readFileSync(join(dir, file), 'utf8') };
    });
  migrations.forEach((m, i) => {
    if (m.id !== i + 1) throw new Error(`migrations: expected ${String(i + 1).padStart(4, '0')}, found ${String(m.id).padStart(4, '0')}_${m.name}`);
  });
  return migrations;
}

export async function migrate(db: Db): Promise<number> {
  await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (id integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  let applied = 0;
  for (const migration of loadMigrations()) {
    const done = await db.transaction(async (tx) => {
      if (db.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCKS.migrations]);
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE id = $1', [migration.id]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (id) VALUES ($1)', [migration.id]);
      return true;
    });
    if (done) applied++;
  }
  return applied;
}
