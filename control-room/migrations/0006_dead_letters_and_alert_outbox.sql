-- Dead letters (why a run was discarded, how often it was requeued) and the durable alert outbox:
-- an alert is a row first, delivered (and retried) by the sender, never dropped.

ALTER TABLE runs ADD COLUMN discard_reason text;
ALTER TABLE runs ADD COLUMN requeues integer NOT NULL DEFAULT 0;
CREATE INDEX runs_dead_lettered ON runs (finished_at DESC, id DESC) WHERE status = 'dead_lettered';
CREATE TABLE alert_outbox (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  -- One alert per event: a dead letter per arrival, a queue age per queue and threshold window.
  dedupe_key text NOT NULL UNIQUE,
  body jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  last_error text,
  delivered_at timestamptz
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE delivered_at IS NULL;
