import { Client } from 'pg';
import type { Logger } from '@orderly/shared';
import { Db } from './db';
import { ADVISORY_LOCKS } from './locks';

/**
 * Leadership among control-room replicas sharing one PostgreSQL: the background tasks that must
 * run once (not once per replica) run only on the replica holding a session advisory lock.
 *
 * Why a session lock on a dedicated connection (`pg_try_advisory_lock`, held while leader) and not
 * `pg_try_advisory_xact_lock` per tick: a per-tick lock only keeps two ticks from overlapping, so
 * two replicas whose timers have different phases would both run a once-a-day task (each at its
 * own time). A held lock gives one stable leader whose timers alone fire; the others try again
 * every `pollMs`. When the leader dies (even SIGKILL) its connection closes, PostgreSQL releases
 * the lock at once, and a follower takes over at its next attempt. The connection is not from the
 * pool: a pooled client would hand the session (and its lock) to unrelated queries.
 *
 * Leadership reduces duplicate work; it is not what makes a task correct. A leader that loses its
 * connection learns it at its next check (within `pollMs`), so two replicas may overlap briefly:
 * every routed task is also idempotent in the database (ON CONFLICT, dedupe keys, deletes by age).
 *
 * PGlite is one process by construction (its data directory cannot be shared): it always leads.
 */
export interface Leadership {
  /** Whether this replica currently runs the once-only tasks. */
  readonly isLeader: boolean;
  /**
   * Every `intervalMs`, runs `task` if this replica leads (skipped otherwise, and while the
   * previous run is still going). A failure is logged under `name` and retried at the next tick.
   */
  every(name: string, intervalMs: number, task: () => Promise<unknown>): void;
  /** Stops the timers and releases the lock (a follower takes over at its next attempt). */
  close(): Promise<void>;
}

export interface LeadershipOptions {
  db: Db;
  /** The PostgreSQL URL (undefined with PGlite). */
  databaseUrl: string | undefined;
  log: Logger;
  /** How often a follower tries the lock and the leader checks that it still holds it. */
  pollMs: number;
  lockId?: number;
}

/** Names the session in `pg_stat_activity`, so an operator (and the tests) see which process leads. */
export const LEADER_APPLICATION_NAME = (pid = process.pid) => `orderly-control-room-leader pid=${pid}`;

export async function startLeadership(options: LeadershipOptions): Promise<Leadership> {
  const { log, pollMs } = options;
  const lockId = options.lockId ?? ADVISORY_LOCKS.leader;
  const timers: NodeJS.Timeout[] = [];
  let leader = options.db.kind === 'pglite' || !options.databaseUrl;
  let client: Client | undefined;
  let closed = false;
  let attempt: Promise<void> = Promise.resolve();

  const dropClient = (reason: string) => {
    const old = client;
    client = undefined;
    if (leader) log.warn({ reason }, 'control room leadership lost');
    leader = false;
    old?.end().catch(() => undefined);
  };

  const tryLead = async (): Promise<void> => {
    if (closed) return;
    try {
      if (!client) {
        const c = new Client({
          connectionString: options.databaseUrl,
          application_name: LEADER_APPLICATION_NAME(),
          keepAlive: true,
          connectionTimeoutMillis: 5000,
        });
        // A lost connection is an 'error' event: unheard it would crash the process.
        c.on('error', () => {
          if (client === c) dropClient('leader connection lost');
        });
        c.on('end', () => {
          if (client === c) dropClient('leader connection ended');
        });
        client = c;
        await c.connect();
      }
      const c = client;
      if (leader) {
        // Still ours? (An administrator may have terminated the session, or the server restarted.)
        const held = await c.query('SELECT 1 FROM pg_locks WHERE locktype = $1 AND pid = pg_backend_pid() AND objid = $2 AND granted', ['advisory', lockId]);
        if (held.rows.length === 0) dropClient('advisory lock no longer held');
        return;
      }
      const { rows } = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [lockId]);
      if (rows[0]?.ok && !closed && client === c) {
        leader = true;
        log.info({ pid: process.pid }, 'control room leadership acquired: this replica runs the once-only background tasks');
      }
    } catch (err) {
      dropClient((err as Error).message);
    }
  };

  if (!leader) {
    await tryLead(); // the first replica to start leads from its first tick
    const poll = setInterval(() => {
      attempt = attempt.then(tryLead);
    }, pollMs);
    poll.unref();
    timers.push(poll);
  }

  return {
    get isLeader() {
      return leader;
    },
    every(name, intervalMs, task) {
      let running = false;
      const timer = setInterval(() => {
        if (!leader || running || closed) return;
        running = true;
        task()
          .catch((err: Error) => log.warn({ task: name, err: { message: err.message } }, 'background task failed; retried at its next tick'))
          .finally(() => (running = false));
      }, intervalMs);
      timer.unref();
      timers.push(timer);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers.splice(0)) clearInterval(timer);
      await attempt.catch(() => undefined);
      const c = client;
      client = undefined;
      leader = false;
      // Ending the session releases the lock: no explicit unlock needed.
      await c?.end().catch(() => undefined);
    },
  };
}
