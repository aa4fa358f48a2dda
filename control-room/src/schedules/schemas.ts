import { z } from 'zod';
import { BotName, BotVersion, SegmentName } from '@orderly/shared';

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
export const CronPattern = z.string().min(9).max(100).regex(/^[0-9A-Za-z*/,?#\- ]+$/, 'cron fields: digits, names, * / , - ? # and spaces');

/** `POST /v1/schedules`: exactly one of `cron` and `everySeconds` (checked with a stable code, see `timing.ts`). */
export const CreateScheduleRequest = z.strictObject({
  name: z.string().max(200),
  bot: BotName,
  version: BotVersion.optional(),
  segment: SegmentName.optional(),
  input: z.record(z.string(), z.unknown()).default({}),
  cron: z.string().max(200).optional(),
  everySeconds: z.number().optional(),
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
