-- One row per attempt (the DLQ shows the history), step checkpoints, and the discarded state.

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
);
