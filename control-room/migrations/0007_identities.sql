-- Identities: people (scrypt password, TOTP secret sealed with the data key), sessions, API
-- tokens, service accounts and runner identities. Every token and session id is stored as a
-- SHA-256 hash.

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
);
