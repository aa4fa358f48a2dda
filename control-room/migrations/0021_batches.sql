-- Work queues of items: a batch and its items, one run each. An item's run key is a keyed hash of
-- the bot and the item's key (never the key itself: it may be a member id), so loading the same
-- file again finds the same runs; the batch key (a keyed hash of the request) finds the batch.

CREATE TABLE batches (
  id uuid PRIMARY KEY,
  batch_key text NOT NULL UNIQUE,
  bot_name text NOT NULL,
  bot_version text NOT NULL,
  segment text NOT NULL,
  key_column text,
  item_count integer NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batches_created ON batches (created_at);

CREATE TABLE batch_items (
  batch_id uuid NOT NULL REFERENCES batches(id),
  position integer NOT NULL,
  -- The line of the file the item starts on (null for items sent as a JSON array).
  line integer,
  -- The idempotency key of the item's first run; a retry's run has this key with `.rN` appended.
  item_key text NOT NULL,
  run_id uuid NOT NULL REFERENCES runs(id),
  retries integer NOT NULL DEFAULT 0,
  PRIMARY KEY (batch_id, position),
  UNIQUE (batch_id, item_key)
);
CREATE INDEX batch_items_run ON batch_items (run_id);
