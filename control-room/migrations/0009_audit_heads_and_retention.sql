-- Audit: signed chain heads (append-only like the events), and the one way events may go:
-- retention expiry of a prefix, allowed only inside a transaction that set the transaction-local
-- settings (control-room/src/audit/retention).

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
CREATE INDEX audit_events_at ON audit_events (at);
