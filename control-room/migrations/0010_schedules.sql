-- Schedules (control-room/src/schedules): the database is the source of truth, Redis only holds
-- BullMQ job schedulers reconciled from these rows. The input is sealed at rest like a run's (AAD
-- names the schedule).

CREATE TABLE schedules (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  bot_name text NOT NULL,
  bot_version text,
  segment text NOT NULL,
  input_sealed jsonb NOT NULL,
  cron text CHECK (length(cron) <= 100),
  every_seconds integer CHECK (every_seconds >= 1),
  paused boolean NOT NULL DEFAULT false,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_fired_at timestamptz,
  last_error_code text,
  CHECK ((cron IS NULL) <> (every_seconds IS NULL))
);
