-- Credential leases per run attempt: which SecretID accessor a run was issued, so it can be
-- revoked.

CREATE TABLE run_leases (
  run_id uuid NOT NULL REFERENCES runs(id),
  attempt integer NOT NULL,
  accessor text NOT NULL,
  leased_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  PRIMARY KEY (run_id, attempt)
);
