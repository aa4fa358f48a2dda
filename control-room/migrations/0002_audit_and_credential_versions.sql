-- Audit log (hash-chained, append-only) and who rotated which credential version when.

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
);
