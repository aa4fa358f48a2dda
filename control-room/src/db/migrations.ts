import { Db } from './db';

/**
 * Migrations run in order, each in its own transaction, once. PostgreSQL and PGlite share them.
 * Never edit an applied migration: add a new one.
 */
const MIGRATIONS: { id: number; sql: string }[] = [
  {
    id: 1,
    sql: `
CREATE TABLE publisher_keys (
  key_id text PRIMARY KEY,
  name text NOT NULL UNIQUE,
  public_key_pem text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
CREATE TABLE packages (
  digest text PRIMARY KEY,
  name text NOT NULL,
  version text NOT NULL,
  publisher_key_id text NOT NULL REFERENCES publisher_keys(key_id),
  manifest jsonb NOT NULL,
  envelope jsonb NOT NULL,
  size integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (name, version)
);
CREATE TABLE package_blobs (
  digest text PRIMARY KEY REFERENCES packages(digest),
  bytes bytea NOT NULL
);
CREATE TABLE runs (
  id uuid PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  request_mac text NOT NULL,
  bot_name text NOT NULL,
  bot_version text NOT NULL,
  digest text NOT NULL REFERENCES packages(digest),
  segment text NOT NULL,
  status text NOT NULL CHECK (status IN ('waiting', 'active', 'succeeded', 'failed', 'dead_lettered', 'cancelled')),
  input_sealed jsonb NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL,
  result_sealed jsonb,
  error jsonb,
  enqueued_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_status_created ON runs (status, created_at);
CREATE TABLE run_logs (
  run_id uuid NOT NULL REFERENCES runs(id),
  attempt integer NOT NULL,
  seq integer NOT NULL,
  at timestamptz NOT NULL,
  level text NOT NULL,
  source text NOT NULL,
  msg text NOT NULL,
  PRIMARY KEY (run_id, attempt, seq)
);
CREATE TABLE job_refusals (
  id bigserial PRIMARY KEY,
  job_id text NOT NULL,
  run_id uuid,
  runner_id text NOT NULL,
  error_code text NOT NULL,
  reason text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);`,
  },
  {
    // Audit log (hash-chained, append-only) and who rotated which credential version when.
    // migrate() splits statements at ";" + newline, so each function body stays on one line.
    id: 2,
    sql: `
CREATE TABLE audit_events (
  seq bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  actor text NOT NULL,
  action text NOT NULL,
  target text NOT NULL,
  outcome text NOT NULL,
  source_ip text,
  request_id text,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- UNIQUE: two events can never follow the same one, so the chain cannot fork.
  prev_hash text NOT NULL UNIQUE,
  hash text NOT NULL UNIQUE
);
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP USING ERRCODE = '42501'; END; $$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
CREATE TABLE credential_rotations (
  bot text NOT NULL,
  name text NOT NULL,
  version integer NOT NULL,
  action text NOT NULL CHECK (action IN ('set', 'rotate')),
  actor text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  max_age_days integer CHECK (max_age_days >= 0),
  PRIMARY KEY (bot, name, version)
);`,
  },
  {
    id: 3,
    sql: `
CREATE TABLE run_leases (
  run_id uuid NOT NULL REFERENCES runs(id),
  attempt integer NOT NULL,
  accessor text NOT NULL,
  leased_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  PRIMARY KEY (run_id, attempt)
)`,
  },
  {
    id: 4,
    sql: `
CREATE TABLE run_screenshots (
  id bigserial PRIMARY KEY,
  run_id uuid NOT NULL REFERENCES runs(id),
  attempt integer NOT NULL,
  name text NOT NULL,
  png_sealed jsonb NOT NULL,
  bytes integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX run_screenshots_run ON run_screenshots (run_id);
CREATE INDEX run_screenshots_expiry ON run_screenshots (expires_at)`,
  },
  {
    // One row per attempt (the DLQ shows the history), step checkpoints, and the discarded state.
    id: 5,
    sql: `
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN ('waiting', 'active', 'succeeded', 'failed', 'dead_lettered', 'cancelled', 'discarded'));
CREATE TABLE run_attempts (
  run_id uuid NOT NULL REFERENCES runs(id),
  attempt integer NOT NULL,
  runner_id text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  outcome text CHECK (outcome IN ('succeeded', 'failed')),
  -- Redacted by the runner before it left the segment; codes and messages only.
  error jsonb,
  PRIMARY KEY (run_id, attempt)
);
CREATE TABLE run_steps (
  run_id uuid NOT NULL REFERENCES runs(id),
  name text NOT NULL,
  attempt integer NOT NULL,
  status text NOT NULL CHECK (status IN ('started', 'done')),
  result_sealed jsonb,
  started_at timestamptz NOT NULL DEFAULT now(),
  done_at timestamptz,
  PRIMARY KEY (run_id, name)
)`,
  },
  {
    // Dead letters (why a run was discarded, how often it was requeued) and the durable alert
    // outbox: an alert is a row first, delivered (and retried) by the sender, never dropped.
    id: 6,
    sql: `
ALTER TABLE runs ADD COLUMN discard_reason text;
ALTER TABLE runs ADD COLUMN requeues integer NOT NULL DEFAULT 0;
CREATE INDEX runs_dead_lettered ON runs (finished_at DESC, id DESC) WHERE status = 'dead_lettered';
CREATE TABLE alert_outbox (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  -- One alert per event: a dead letter per arrival, a queue age per queue and threshold window.
  dedupe_key text NOT NULL UNIQUE,
  body jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  last_error text,
  delivered_at timestamptz
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE delivered_at IS NULL`,
  },
  {
    // Identities: people (scrypt password, TOTP secret sealed with the data key), sessions, API
    // tokens, service accounts and runner identities. Every token and session id is stored as a
    // SHA-256 hash; the throttle is keyed by the attempted username, existing or not.
    id: 7,
    sql: `
CREATE TABLE users (
  id uuid PRIMARY KEY,
  username text NOT NULL UNIQUE,
  roles text[] NOT NULL,
  password_hash text,
  totp_sealed jsonb,
  totp_last_step bigint,
  enrolment_hash text,
  enrolment_expires_at timestamptz,
  enrolled_at timestamptz,
  disabled_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE recovery_codes (
  user_id uuid NOT NULL REFERENCES users(id),
  code_hash text NOT NULL,
  used_at timestamptz,
  PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE sign_in_throttle (
  username text PRIMARY KEY,
  failures integer NOT NULL,
  locked_until timestamptz,
  last_failure_at timestamptz NOT NULL
);
CREATE TABLE sessions (
  id_hash text PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users(id),
  csrf_hash text NOT NULL,
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  stepped_up_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE service_accounts (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE,
  roles text[] NOT NULL,
  disabled_at timestamptz,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE api_tokens (
  id uuid PRIMARY KEY,
  token_hash text NOT NULL UNIQUE,
  owner_kind text NOT NULL CHECK (owner_kind IN ('user', 'service')),
  owner_id uuid NOT NULL,
  name text NOT NULL,
  scopes text[] NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_by text,
  last_used_at timestamptz
);
CREATE INDEX api_tokens_owner ON api_tokens (owner_kind, owner_id);
CREATE TABLE runner_identities (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE,
  segment text NOT NULL,
  token_hash text NOT NULL UNIQUE,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  last_used_at timestamptz
)`,
  },
  {
    // Who published each package (separation of duties at promotion), release attestations
    // (promotion to a channel, signed with the release key) and who revoked a publisher key.
    id: 8,
    sql: `
ALTER TABLE packages ADD COLUMN published_by text;
ALTER TABLE packages ADD COLUMN published_by_actor text;
ALTER TABLE publisher_keys ADD COLUMN revoked_by text;
CREATE TABLE release_attestations (
  id bigserial PRIMARY KEY,
  digest text NOT NULL REFERENCES packages(digest),
  channel text NOT NULL CHECK (channel IN ('dev', 'prod')),
  approver_id text NOT NULL,
  approver_actor text NOT NULL,
  approved_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  ticket text,
  envelope jsonb NOT NULL
);
CREATE INDEX release_attestations_digest ON release_attestations (digest, channel)`,
  },
  {
    // Audit: signed chain heads (append-only like the events), and the one way events may go:
    // retention expiry of a prefix, allowed only inside a transaction that set the two
    // transaction-local settings (control-room/src/audit/audit.ts expire()).
    id: 9,
    sql: `
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'DELETE' THEN IF OLD.seq <= COALESCE(NULLIF(current_setting('orderly.audit_expire_through', true), ''), '0')::bigint AND OLD.at < COALESCE(NULLIF(current_setting('orderly.audit_expire_before', true), ''), '-infinity')::timestamptz THEN RETURN OLD; END IF; END IF; RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501'; END; $$;
CREATE TABLE audit_heads (
  seq bigint PRIMARY KEY,
  hash text NOT NULL,
  at timestamptz NOT NULL,
  key_id text NOT NULL,
  signature text NOT NULL
);
CREATE FUNCTION audit_heads_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501'; END; $$;
CREATE TRIGGER audit_heads_no_update_delete BEFORE UPDATE OR DELETE ON audit_heads FOR EACH ROW EXECUTE FUNCTION audit_heads_append_only();
CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_heads FOR EACH STATEMENT EXECUTE FUNCTION audit_heads_append_only();
CREATE INDEX audit_events_at ON audit_events (at)`,
  },
  {
    // Schedules (control-room/src/schedules): the database is the source of truth, Redis only
    // holds BullMQ job schedulers reconciled from these rows. The input is sealed at rest like a
    // run's (AAD names the schedule). Exactly one of cron and every_seconds is set.
    id: 10,
    sql: `
CREATE TABLE schedules (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  bot_name text NOT NULL,
  bot_version text,
  segment text NOT NULL,
  input_sealed jsonb NOT NULL,
  cron text CHECK (length(cron) <= 100),
  every_seconds integer CHECK (every_seconds >= 1),
  paused boolean NOT NULL DEFAULT false,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_fired_at timestamptz,
  last_error_code text,
  CHECK ((cron IS NULL) <> (every_seconds IS NULL))
)`,
  },
  {
    // Audit appends in one round trip: lock the chain (advisory lock 7301, to the end of the
    // transaction), read the last hash, insert with sha256(prev_hash || canonical content).
    id: 11,
    sql: `
CREATE FUNCTION audit_append(p_at timestamptz, p_actor text, p_action text, p_target text, p_outcome text, p_source_ip text, p_request_id text, p_details jsonb, p_content text) RETURNS void LANGUAGE plpgsql AS $$ DECLARE prev text; BEGIN PERFORM pg_advisory_xact_lock(7301); SELECT hash INTO prev FROM audit_events ORDER BY seq DESC LIMIT 1; prev := COALESCE(prev, repeat('0', 64)); INSERT INTO audit_events (at, actor, action, target, outcome, source_ip, request_id, details, prev_hash, hash) VALUES (p_at, p_actor, p_action, p_target, p_outcome, p_source_ip, p_request_id, p_details, prev, encode(sha256(convert_to(prev || p_content, 'UTF8')), 'hex')); END; $$`,
  },
];

export async function migrate(db: Db): Promise<number> {
  await db.query('CREATE TABLE IF NOT EXISTS schema_migrations (id integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  let applied = 0;
  for (const migration of MIGRATIONS) {
    const done = await db.transaction(async (tx) => {
      // Two control rooms starting together on one PostgreSQL must not both migrate.
      if (db.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(7300)');
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE id = $1', [migration.id]);
      if (rows.length > 0) return false;
      for (const statement of migration.sql.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (id) VALUES ($1)', [migration.id]);
      return true;
    });
    if (done) applied++;
  }
  return applied;
}
