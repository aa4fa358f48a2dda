import { PGlite } from '@electric-sql/pglite';
import { Pool, PoolClient } from 'pg';

/** The database port: PostgreSQL through `pg`, or embedded PGlite; same SQL, same migrations. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

/** A transaction: queries, and whole SQL scripts of several statements (migrations). */
export interface Transaction extends Queryable {
  exec(script: string): Promise<void>;
}

export interface Db extends Queryable {
  /** Runs `fn` in one transaction; rolls back if it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  readonly kind: 'postgres' | 'pglite';
}

export function postgresDb(url: string): Db {
  // A connection attempt that hangs (a partitioned network) fails after a bound, as a 503.
  const pool = new Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5000 });
  // An idle client's error (the server restarting) must not crash the process; the next
  // query reconnects.
  pool.on('error', () => undefined);
  let closed = false;
  return {
    kind: 'postgres',
    async query(sql, params) {
      return (await pool.query(sql, params as unknown[])).rows;
    },
    async transaction(fn) {
      const client: PoolClient = await pool.connect();
      let broken = false;
      // pg emits a checked-out client's connection loss as an 'error' event (the pool listens only
      // while a client is idle): unheard, it would crash the process. The failing query rejects too,
      // and that is what the caller sees.
      const onConnectionLost = () => {
        broken = true;
      };
      client.on('error', onConnectionLost);
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: async (sql, params) => (await client.query(sql, params as unknown[])).rows,
          // Without parameters pg uses the simple query protocol, which runs several statements.
          exec: async (script) => void (await client.query(script)),
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // A connection that cannot even roll back is dead: destroy it, never hand it out again.
        if (!broken)
          broken = await client.query('ROLLBACK').then(
            () => false,
            () => true,
          );
        throw err;
      } finally {
        client.off('error', onConnectionLost);
        client.release(broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

export async function pgliteDb(dataDir: string): Promise<Db> {
  // PGlite's WebAssembly is loaded here, on construction, not at import.
  const pg = new PGlite(dataDir);
  await pg.waitReady;
  let closed = false;
  const toRows = <R>(r: { rows: unknown[] }) => r.rows as R[];
  return {
    kind: 'pglite',
    async query(sql, params) {
      return toRows(await pg.query(sql, params as unknown[]));
    },
    async transaction(fn) {
      return pg.transaction(async (tx) =>
        fn({ query: async (sql, params) => toRows(await tx.query(sql, params as unknown[])), exec: async (script) => void (await tx.exec(script)) }),
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      await pg.close();
    },
  };
}

export async function openDb(options: { databaseUrl?: string | undefined; pgliteDir: string }): Promise<Db> {
  return options.databaseUrl ? postgresDb(options.databaseUrl) : pgliteDb(options.pgliteDir);
}
