/**
 * PostgreSQL advisory lock ids, in one place so that no two uses pick the same number. SQL that
 * cannot import this module (the audit_append function of migration 0011) names the id it uses.
 */
export const ADVISORY_LOCKS = {
  /** Two control rooms starting together on one PostgreSQL must not both migrate. */
  migrations: 7300,
  /** Audit appends are serialised so that concurrent ones cannot fork the hash chain. */
  auditChain: 7301,
  /** Held (session lock) by the one control-room replica that runs the once-only background tasks (leadership.ts). */
  leader: 7302,
} as const;
