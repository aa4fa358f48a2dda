-- Schedules the way RPA teams run them (control-room/src/schedules): each schedule's cron pattern
-- is read on the wall clock of an IANA time zone (UTC for the schedules made before this
-- migration, so they fire as before), may follow a named business calendar of working days and
-- holidays (its own zone; a fire on a non-working day is skipped or moved to the next working
-- day), and says what a fire does while the schedule's previous run is still going (overlap) and
-- what a control room that was down does with the fires it missed (misfire).
-- Fires that made no run of their own (missed, skipped over an overlap, queued, replaced) are
-- recorded, one row per fire, so an operator can see every fire that did not run and why.

CREATE TABLE business_calendars (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  time_zone text NOT NULL CHECK (length(time_zone) BETWEEN 1 AND 64),
  -- ISO weekdays (1 = Monday … 7 = Sunday) that are working days.
  working_days smallint[] NOT NULL CHECK (working_days <@ ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[]),
  -- Non-working dates, YYYY-MM-DD in the calendar's zone (text: a date column would be shifted by
  -- drivers that turn it into a local-midnight instant).
  holidays text[] NOT NULL DEFAULT '{}',
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE schedules
  ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64),
  -- A calendar in use cannot be deleted (ORDERLY_E_CALENDAR_IN_USE).
  ADD COLUMN calendar text REFERENCES business_calendars (name) ON DELETE RESTRICT,
  ADD COLUMN calendar_policy text CHECK (calendar_policy IN ('skip', 'next_working_day')),
  -- 'allow' and 'run_once' are what schedules did before.
  ADD COLUMN overlap_policy text NOT NULL DEFAULT 'allow' CHECK (overlap_policy IN ('skip', 'queue_one', 'allow')),
  ADD COLUMN misfire_policy text NOT NULL DEFAULT 'run_once' CHECK (misfire_policy IN ('run_once', 'skip')),
  -- queue_one: the one fire waiting for the previous run to end.
  ADD COLUMN queued_fire_at timestamptz,
  ADD CONSTRAINT schedules_calendar_policy CHECK ((calendar IS NULL) = (calendar_policy IS NULL));

CREATE TABLE schedule_fire_records (
  schedule_id uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
  fire_time timestamptz NOT NULL,
  -- misfire: due while no control room took ticks; overlap: the previous run was still going;
  -- calendar: the fire fell on a non-working day.
  reason text NOT NULL CHECK (reason IN ('misfire', 'overlap', 'calendar')),
  -- ran: this fire's run stands for the missed ones (misfire run_once); skipped: no run; queued:
  -- waits for the previous run (queue_one); replaced: a later fire took its place in the queue.
  handling text NOT NULL CHECK (handling IN ('ran', 'skipped', 'queued', 'replaced')),
  run_id uuid,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schedule_id, fire_time, reason)
);
CREATE INDEX schedule_fire_records_recorded ON schedule_fire_records (schedule_id, recorded_at);
