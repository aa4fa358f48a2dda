import { z } from 'zod';
import { BotName, BotVersion, SegmentName } from '../ids';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A schedule's name: 1-64 lower-case letters, digits, `.`, `_`, `-`, starting with a letter or
 * digit (safe in URLs, logs and shells). Never UUID-shaped: routes take an id or a name, and the
 * two must not be confused.
 */
export const ScheduleName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, '1-64 lower-case letters, digits, ., _ and -, starting with a letter or digit')
  .refine((name) => !UUID.test(name), 'a schedule name may not look like a UUID');

/** A path parameter: a schedule's id (UUID) or its name. */
export const ScheduleRef = z.union([z.uuid(), ScheduleName]);

/** The cron pattern's characters (5 or 6 fields, evaluated in UTC); its meaning is checked by the parser. */
export const CronPattern = z
  .string()
  .min(9)
  .max(100)
  .regex(/^[0-9A-Za-z*/,?#\- ]+$/, 'cron fields: digits, names, * / , - ? # and spaces');

export const OverlapPolicy = z.enum(['skip', 'queue_one', 'allow']);
export const MisfirePolicy = z.enum(['run_once', 'skip']);
export const CalendarPolicy = z.enum(['skip', 'next_working_day']);

/**
 * `POST /v1/schedules`: exactly one of `cron` and `everySeconds` (checked with a stable code, see
 * `timing.ts`); `timeZone` (IANA, default UTC) is the clock the cron pattern is read on;
 * `calendar` names a business calendar and `calendarPolicy` what a non-working day does.
 */
export const CreateScheduleRequest = z.strictObject({
  name: z.string().max(200),
  bot: BotName,
  version: BotVersion.optional(),
  segment: SegmentName.optional(),
  input: z.record(z.string(), z.unknown()).default({}),
  cron: z.string().max(200).optional(),
  everySeconds: z.number().optional(),
  timeZone: z.string().max(100).optional(),
  calendar: z.string().max(100).optional(),
  calendarPolicy: CalendarPolicy.optional(),
  overlap: OverlapPolicy.default('allow'),
  misfire: MisfirePolicy.default('run_once'),
});
export type CreateScheduleRequest = z.infer<typeof CreateScheduleRequest>;

/** What the API answers for a schedule: never its input. */
export const ScheduleView = z.object({
  id: z.uuid(),
  name: z.string(),
  bot: z.string(),
  /** Null: the latest published version at each fire. */
  version: z.string().nullable(),
  segment: z.string(),
  cron: z.string().nullable(),
  everySeconds: z.number().nullable(),
  timeZone: z.string(),
  calendar: z.string().nullable(),
  calendarPolicy: CalendarPolicy.nullable(),
  overlap: OverlapPolicy,
  misfire: MisfirePolicy,
  /** queue_one: the fire waiting for the previous run to end. */
  queuedFireAt: z.string().nullable(),
  paused: z.boolean(),
  createdBy: z.string(),
  createdAt: z.string(),
  lastFiredAt: z.string().nullable(),
  /** The error code of the last fire that could not create a run; cleared by the next that did. */
  lastErrorCode: z.string().nullable(),
  /** When BullMQ will fire next; null when paused (or Redis has no scheduler for it yet). */
  nextFireAt: z.string().nullable(),
});
export type ScheduleView = z.infer<typeof ScheduleView>;

export const ScheduleList = z.object({ schedules: z.array(ScheduleView) });

/** The data of a tick job on `orderly.schedules`: the schedule's id and nothing else (no input, no PHI). */
export const TickData = z.strictObject({ v: z.literal(1), scheduleId: z.uuid() });
export type TickData = z.infer<typeof TickData>;

/** `GET /v1/schedules/:id/next?count=N`: the next fires, in the schedule's zone and in UTC. */
export const NextFiresQuery = z.strictObject({ count: z.coerce.number().int().min(1).max(100).default(5) });
export const NextFires = z.object({
  scheduleId: z.uuid(),
  timeZone: z.string(),
  fires: z.array(z.object({ local: z.string(), utc: z.string() })),
});
export type NextFires = z.infer<typeof NextFires>;

/** A fire that made no run of its own (`GET /v1/schedules/:id/fire-records`). */
export const FireRecord = z.object({
  fireTime: z.string(),
  reason: z.enum(['misfire', 'overlap', 'calendar']),
  handling: z.enum(['ran', 'skipped', 'queued', 'replaced']),
  runId: z.string().nullable(),
  recordedAt: z.string(),
});
export type FireRecord = z.infer<typeof FireRecord>;
export const FireRecordList = z.object({ records: z.array(FireRecord) });

/** A business calendar's name: like a schedule's. */
export const CalendarName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, '1-64 lower-case letters, digits, ., _ and -, starting with a letter or digit');

/** `PUT /v1/calendars/:name`: creates or replaces a calendar. Holidays as dates and/or an iCalendar file's text. */
export const PutCalendarRequest = z.strictObject({
  timeZone: z.string().max(100),
  workingDays: z.array(z.number().int().min(1).max(7)).min(1).max(7).optional(),
  holidays: z
    .array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'YYYY-MM-DD'))
    .max(5000)
    .optional(),
  ics: z.string().max(1_000_000).optional(),
});
export type PutCalendarRequest = z.infer<typeof PutCalendarRequest>;

export const CalendarView = z.object({
  name: z.string(),
  timeZone: z.string(),
  workingDays: z.array(z.number()),
  holidays: z.array(z.string()),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type CalendarView = z.infer<typeof CalendarView>;
export const CalendarList = z.object({ calendars: z.array(CalendarView) });
