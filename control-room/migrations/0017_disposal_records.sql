-- Disposal records (45 CFR 164.310(d)(2)(i)): each retention purge writes one row saying what it
-- disposed of (the kind, how many, the time range of the disposed items, the policy that allowed
-- it), in the purge's own transaction, so an auditor can see that retention ran and what went,
-- after the data itself is gone. Counts, times and policy only: never content, ids of people or PHI.
-- Append-only like the other evidence tables: a record that could be edited afterwards proves nothing.

CREATE TABLE disposal_records (
  id bigserial PRIMARY KEY,
  disposed_at timestamptz NOT NULL DEFAULT now(),
  -- What was disposed of: run screenshots, the oldest prefix of the audit chain (logs and finished
  -- runs are named for their purges to come).
  kind text NOT NULL CHECK (kind IN ('screenshots', 'audit_events', 'run_logs', 'runs')),
  count integer NOT NULL CHECK (count > 0),
  -- The creation times of the oldest and newest item disposed of.
  range_start timestamptz NOT NULL,
  range_end timestamptz NOT NULL,
  -- The rule that allowed it, e.g. `ORDERLY_SCREENSHOT_RETENTION_DAYS=30`.
  policy text NOT NULL CHECK (length(policy) BETWEEN 1 AND 200),
  actor text NOT NULL,
  -- Bounds such as the audit seq range; scalars only.
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  CHECK (range_start <= range_end)
);
CREATE INDEX disposal_records_at ON disposal_records (disposed_at DESC, id DESC);
CREATE TRIGGER disposal_records_append_only BEFORE UPDATE OR DELETE ON disposal_records FOR EACH ROW EXECUTE FUNCTION compliance_append_only();
