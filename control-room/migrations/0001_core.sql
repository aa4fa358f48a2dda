-- Publisher keys, packages and their blobs, runs: the tables the path of a run needs.

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
);
