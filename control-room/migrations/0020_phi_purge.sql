-- Retention purge of finished runs' PHI (45 CFR 164.310(d)(2)(i)): past ORDERLY_RUN_RETENTION_DAYS a
-- finished run (succeeded, failed, cancelled or discarded; never a dead letter, which an operator
-- still has to work) loses its sealed input and result, its step results, its screenshots and its
-- logs. The row stays (ids, bot, segment, status, times, redacted error) so counts, the inventory and
-- the audit trail keep pointing at something; phi_purged_at says when its PHI went. The purge
-- writes its disposal records and audit event in its own transaction.

ALTER TABLE runs ALTER COLUMN input_sealed DROP NOT NULL;
ALTER TABLE runs ADD COLUMN phi_purged_at timestamptz;
-- Only a purge empties the input, and only a finished run is purged.
ALTER TABLE runs ADD CONSTRAINT runs_input_sealed_until_purged CHECK (input_sealed IS NOT NULL OR phi_purged_at IS NOT NULL);
ALTER TABLE runs ADD CONSTRAINT runs_purged_when_finished CHECK (phi_purged_at IS NULL OR status IN ('succeeded', 'failed', 'cancelled', 'discarded'));
-- The purge looks for finished runs not yet purged, oldest change first.
CREATE INDEX runs_phi_unpurged ON runs (updated_at) WHERE phi_purged_at IS NULL;
