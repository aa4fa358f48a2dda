-- Compliance: evidence of recurring safeguards (backups, restore drills, access and audit
-- reviews) and the signed compliance reports. Both are append-only like the audit log: evidence
-- that could be edited afterwards would prove nothing.

CREATE TABLE compliance_evidence (
  id bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('backup', 'restore_drill', 'access_review', 'audit_review')),
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  -- Counts, digests and ids only; never content.
  details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX compliance_evidence_kind_at ON compliance_evidence (kind, at DESC);
CREATE TABLE compliance_reports (
  id uuid PRIMARY KEY,
  collected_at timestamptz NOT NULL,
  digest text NOT NULL,
  report jsonb NOT NULL
);
CREATE FUNCTION compliance_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501'; END; $$;
CREATE TRIGGER compliance_evidence_append_only BEFORE UPDATE OR DELETE ON compliance_evidence FOR EACH ROW EXECUTE FUNCTION compliance_append_only();
CREATE TRIGGER compliance_reports_append_only BEFORE UPDATE OR DELETE ON compliance_reports FOR EACH ROW EXECUTE FUNCTION compliance_append_only();

-- Access review campaigns: every person, service account, runner identity, API token and bot
-- credential at the start, with roles and last use; each item is confirmed or revoked by a
-- reviewer. A campaign is evidence: its items keep who decided what and when.
CREATE TABLE access_reviews (
  id uuid PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  started_by text NOT NULL,
  due_at timestamptz NOT NULL,
  completed_at timestamptz
);
CREATE TABLE access_review_items (
  review_id uuid NOT NULL REFERENCES access_reviews(id),
  item_id integer NOT NULL,
  kind text NOT NULL CHECK (kind IN ('person', 'service_account', 'runner_identity', 'api_token', 'bot_credential')),
  subject_id text NOT NULL,
  label text NOT NULL,
  roles text[] NOT NULL DEFAULT '{}',
  last_used_at timestamptz,
  decision text CHECK (decision IN ('confirmed', 'revoked')),
  decided_by text,
  decided_at timestamptz,
  PRIMARY KEY (review_id, item_id)
);
