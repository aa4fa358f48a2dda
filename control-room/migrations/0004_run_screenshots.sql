-- Masked screenshots of a run, sealed at rest, with an expiry.

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
CREATE INDEX run_screenshots_expiry ON run_screenshots (expires_at);
