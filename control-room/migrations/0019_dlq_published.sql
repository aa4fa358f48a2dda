-- The `orderly.dlq.<segment>` entry of a dead-lettered run is added after the commit that
-- dead-lettered it (control-room/src/dlq/dead-letter.ts). Redis may be down at that moment: the
-- database stays the truth, and this column says whether the entry went out, so the enqueue
-- sweep adds the missing ones once Redis is back (the job id is the run id: adding twice is a
-- no-op). Runs dead-lettered before this migration count as published: their entries were added
-- or logged as lost then, and re-adding them now would hand operators' tools old news.

ALTER TABLE runs ADD COLUMN dlq_published_at timestamptz;
UPDATE runs SET dlq_published_at = COALESCE(finished_at, updated_at) WHERE status = 'dead_lettered';
CREATE INDEX runs_dlq_unpublished ON runs (finished_at) WHERE status = 'dead_lettered' AND dlq_published_at IS NULL;
