-- A batch can be paused, resumed and cancelled (issue 19): its state is read by every claim of one
-- of its runs (a paused or cancelled batch's waiting runs are not started), so it lives with the
-- batch. Who changed it last, and when, is kept here; every change is also an audit event.
ALTER TABLE batches ADD COLUMN state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'paused', 'cancelled'));
ALTER TABLE batches ADD COLUMN state_changed_at timestamptz;
ALTER TABLE batches ADD COLUMN state_changed_by text;
