import { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { canIn, segmentsWith } from '../access/bindings';
import { parseRequest } from '../http/errors';
import { Schedules } from './schedules';
import { CalendarName, CreateScheduleRequest, NextFiresQuery, PutCalendarRequest, ScheduleRef } from '@orderly/shared';

const RefParams = z.strictObject({ id: ScheduleRef });
const NoQuery = z.strictObject({});

const refOf = (request: FastifyRequest) => parseRequest(RefParams, request.params, 'path').id;

/** Role bindings are per segment: a schedule of another segment answers like a missing one. */
async function scopedRef(request: FastifyRequest, schedules: Schedules, permission: 'runs.read' | 'schedules.manage'): Promise<string> {
  return scopedScheduleRef(request, schedules, permission, refOf(request));
}

/** The check of `scopedRef` for a reference the caller already parsed (the console's forms use it too). */
export async function scopedScheduleRef(
  request: FastifyRequest,
  schedules: Schedules,
  permission: 'runs.read' | 'schedules.manage',
  ref: string,
): Promise<string> {
  if (segmentsWith(request.principal, permission) === 'all') return ref;
  const view = await schedules.get(ref);
  if (!canIn(request.principal, permission, view.segment)) throw new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such schedule');
  return ref;
}

/** The audit event of a schedule change names the schedule by id (names are operators' free text). */
function auditSchedule(request: FastifyRequest, view: { id: string; bot: string; segment: string }): void {
  request.auditTarget = `schedule:${view.id}`;
  request.auditDetails = { scheduleId: view.id, bot: view.bot, segment: view.segment };
}

/** A new schedule's segment must be one the caller's `schedules.manage` bindings cover (named, when they are per segment). */
export function assertSchedulesIn(request: FastifyRequest, segment: string | undefined): void {
  const segments = segmentsWith(request.principal, 'schedules.manage');
  if (segments !== 'all' && (segment === undefined || !segments.has(segment))) {
    throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'your role bindings do not cover this segment: name one they do', {
      permission: 'schedules.manage',
      segment: segment ?? null,
    });
  }
}

/**
 * Schedules: operators (`schedules.manage`) create, pause, resume and delete them; whoever may
 * read runs may read them. Reads never return the input.
 */
export function scheduleRoutes(app: FastifyInstance, schedules: Schedules): void {
  app.post('/v1/schedules', { config: { permission: 'schedules.manage', audit: 'schedule.create' } }, async (request, reply) => {
    // A cron pattern or interval of the wrong type is a schedule problem, with its own code.
    const raw = request.body as { cron?: unknown; everySeconds?: unknown } | null | undefined;
    if (
      raw &&
      typeof raw === 'object' &&
      ((raw.cron !== undefined && typeof raw.cron !== 'string') || (raw.everySeconds !== undefined && typeof raw.everySeconds !== 'number'))
    ) {
      throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', 'cron is a string and everySeconds a number');
    }
    const body = parseRequest(CreateScheduleRequest, request.body);
    assertSchedulesIn(request, body.segment);
    const view = await schedules.create(body, request.principal!.actor);
    auditSchedule(request, view);
    return reply.code(201).send(view);
  });
  app.get('/v1/schedules', { config: { permission: 'runs.read' } }, async (request) => {
    parseRequest(NoQuery, request.query, 'query');
    const segments = segmentsWith(request.principal, 'runs.read');
    const all = await schedules.list();
    return { schedules: segments === 'all' ? all : all.filter((v) => segments.has(v.segment)) };
  });
  app.get('/v1/schedules/:id', { config: { permission: 'runs.read' } }, async (request) => schedules.get(await scopedRef(request, schedules, 'runs.read')));
  app.post('/v1/schedules/:id/pause', { config: { permission: 'schedules.manage', audit: 'schedule.pause' } }, async (request) => {
    const view = await schedules.setPaused(await scopedRef(request, schedules, 'schedules.manage'), true);
    auditSchedule(request, view);
    return view;
  });
  app.post('/v1/schedules/:id/resume', { config: { permission: 'schedules.manage', audit: 'schedule.resume' } }, async (request) => {
    const view = await schedules.setPaused(await scopedRef(request, schedules, 'schedules.manage'), false);
    auditSchedule(request, view);
    return view;
  });
  app.get('/v1/schedules/:id/next', { config: { permission: 'runs.read' } }, async (request) => {
    const { count } = parseRequest(NextFiresQuery, request.query, 'query');
    return schedules.nextFires(await scopedRef(request, schedules, 'runs.read'), count);
  });
  app.get('/v1/schedules/:id/fire-records', { config: { permission: 'runs.read' } }, async (request) => {
    parseRequest(NoQuery, request.query, 'query');
    return { records: await schedules.fireRecords(await scopedRef(request, schedules, 'runs.read')) };
  });
  calendarRoutes(app, schedules);
  app.delete('/v1/schedules/:id', { config: { permission: 'schedules.manage', audit: 'schedule.delete' } }, async (request) => {
    const view = await schedules.remove(await scopedRef(request, schedules, 'schedules.manage'));
    auditSchedule(request, view);
    return view;
  });
}

const CalendarParams = z.strictObject({ name: CalendarName });

/** Calendars are shared by schedules of every segment: changing one needs `schedules.manage` in all of them. */
function assertAllSegments(request: FastifyRequest): void {
  if (segmentsWith(request.principal, 'schedules.manage') !== 'all') {
    throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'business calendars are shared by all segments: changing one needs schedules.manage in every segment', {
      permission: 'schedules.manage',
    });
  }
}

/** Business calendars: read by whoever may read runs, created, replaced and deleted by operators. */
function calendarRoutes(app: FastifyInstance, schedules: Schedules): void {
  const calendars = schedules.calendars;
  app.get('/v1/calendars', { config: { permission: 'runs.read' } }, async (request) => {
    parseRequest(NoQuery, request.query, 'query');
    return { calendars: await calendars.list() };
  });
  app.get('/v1/calendars/:name', { config: { permission: 'runs.read' } }, async (request) =>
    calendars.view(parseRequest(CalendarParams, request.params, 'path').name),
  );
  app.put('/v1/calendars/:name', { config: { permission: 'schedules.manage', audit: 'calendar.put' } }, async (request) => {
    const { name } = parseRequest(CalendarParams, request.params, 'path');
    assertAllSegments(request);
    const body = parseRequest(PutCalendarRequest, request.body);
    const view = await calendars.put(name, body, request.principal!.actor);
    request.auditTarget = `calendar:${name}`;
    request.auditDetails = { calendar: name, timeZone: view.timeZone, workingDays: view.workingDays.join(','), holidays: view.holidays.length };
    return view;
  });
  app.delete('/v1/calendars/:name', { config: { permission: 'schedules.manage', audit: 'calendar.delete' } }, async (request) => {
    const { name } = parseRequest(CalendarParams, request.params, 'path');
    assertAllSegments(request);
    const view = await calendars.remove(name);
    request.auditTarget = `calendar:${name}`;
    request.auditDetails = { calendar: name };
    return view;
  });
}
