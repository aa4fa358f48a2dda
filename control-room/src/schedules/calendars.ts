import { OrderlyError } from '@orderly/shared';
import { Db } from '../db/db';
import { BusinessCalendar, parseIcsHolidays } from './calendar-rules';
import { CalendarName, CalendarView, PutCalendarRequest } from '@orderly/shared';
import { assertTimeZone } from './zoned';

interface CalendarRow {
  name: string;
  time_zone: string;
  working_days: number[];
  holidays: string[];
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const invalid = (message: string) => new OrderlyError('ORDERLY_E_CALENDAR_INVALID', message);

const toCalendar = (row: CalendarRow): BusinessCalendar => ({
  name: row.name,
  timeZone: row.time_zone,
  workingDays: row.working_days.map(Number),
  holidays: row.holidays,
});

const toView = (row: CalendarRow): CalendarView => ({
  ...toCalendar(row),
  workingDays: row.working_days.map(Number),
  holidays: [...row.holidays],
  createdBy: row.created_by,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

/**
 * Business calendars: named sets of working weekdays and holidays in a time zone, which schedules
 * follow. The last calendar read is kept in memory so that computing a fire never fails because
 * the database is briefly away (`cached`).
 */
export class Calendars {
  private readonly cache = new Map<string, BusinessCalendar>();

  constructor(private readonly db: Db) {}

  /** Creates or replaces a calendar; holidays are the union of `holidays` and the dates of `ics`. */
  async put(name: string, request: PutCalendarRequest, actor: string): Promise<CalendarView> {
    if (!CalendarName.safeParse(name).success) throw invalid('a calendar name is 1-64 lower-case letters, digits, ., _ and -, starting with a letter or digit');
    assertTimeZone(request.timeZone);
    const workingDays = [...new Set(request.workingDays ?? [1, 2, 3, 4, 5])].sort();
    const holidays = new Set<string>();
    for (const date of request.holidays ?? []) {
      if (new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) throw invalid(`not a calendar date: ${date}`);
      holidays.add(date);
    }
    if (request.ics !== undefined) for (const date of parseIcsHolidays(request.ics)) holidays.add(date);
    if (holidays.size > 5000) throw invalid('more than 5000 holidays');
    const rows = await this.db.query<CalendarRow>(
      `INSERT INTO business_calendars (name, time_zone, working_days, holidays, created_by) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE SET time_zone = EXCLUDED.time_zone, working_days = EXCLUDED.working_days, holidays = EXCLUDED.holidays, updated_at = now()
       RETURNING *`,
      [name, request.timeZone, workingDays, [...holidays].sort(), actor],
    );
    this.cache.set(name, toCalendar(rows[0]!));
    return toView(rows[0]!);
  }

  async list(): Promise<CalendarView[]> {
    return (await this.db.query<CalendarRow>('SELECT * FROM business_calendars ORDER BY name')).map(toView);
  }

  async view(name: string): Promise<CalendarView> {
    const rows = await this.db.query<CalendarRow>('SELECT * FROM business_calendars WHERE name = $1', [name]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no calendar ${name}`);
    return toView(rows[0]);
  }

  /** The calendar, or ORDERLY_E_CALENDAR_UNKNOWN. */
  async get(name: string): Promise<BusinessCalendar> {
    const rows = CalendarName.safeParse(name).success ? await this.db.query<CalendarRow>('SELECT * FROM business_calendars WHERE name = $1', [name]) : [];
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_CALENDAR_UNKNOWN', `no business calendar ${name}`, { calendar: name.slice(0, 64) });
    const calendar = toCalendar(rows[0]);
    this.cache.set(name, calendar);
    return calendar;
  }

  /** The calendar from the database, or the last one read when the database does not answer. */
  async cached(name: string): Promise<BusinessCalendar | undefined> {
    try {
      return await this.get(name);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ORDERLY_E_CALENDAR_UNKNOWN') return undefined;
      return this.cache.get(name);
    }
  }

  async remove(name: string): Promise<CalendarView> {
    const view = await this.view(name);
    const users = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM schedules WHERE calendar = $1', [name]);
    if ((users[0]?.n ?? 0) > 0)
      throw new OrderlyError('ORDERLY_E_CALENDAR_IN_USE', `calendar ${name} is used by ${users[0]!.n} schedule(s)`, { calendar: name });
    try {
      await this.db.query('DELETE FROM business_calendars WHERE name = $1', [name]);
    } catch (err) {
      // A schedule took it up between the count and the delete (the foreign key refuses).
      if ((err as { code?: unknown }).code === '23503')
        throw new OrderlyError('ORDERLY_E_CALENDAR_IN_USE', `calendar ${name} is used by a schedule`, { calendar: name });
      throw err;
    }
    this.cache.delete(name);
    return view;
  }
}
