import { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { parseRequest } from '../http/errors';
import { Schedules } from './schedules';
import { CreateScheduleRequest, ScheduleRef } from './schemas';

const RefParams = z.strictObject({ id: ScheduleRef });
const NoQuery = z.strictObject({});

const refOf = (request: FastifyRequest) => parseRequest(RefParams, request.params, 'path').id;

/** The audit event of a schedule change names the schedule by id (names are operators' free text). */
function auditSchedule(request: FastifyRequest, view: { id: string; bot: string; segment: string }): void {
  request.auditTarget = `schedule:${view.id}`;
  request.auditDetails = { scheduleId: view.id, bot: view.bot, segment: view.segment };
}

/**
 * Schedules: operators (`schedules.manage`) create, pause, resume and delete them; whoever may
 * read runs may read them. Reads never return the input.
 */
export function scheduleRoutes(app: FastifyInstance, schedules: Schedules): void {
  app.post('/v1/schedules', { config: { permission: 'schedules.manage', audit: 'schedule.create' } }, async (request, reply) => {
    // A cron pattern or interval of the wrong type is a schedule problem, with its own code.
    const raw = request.body as { cron?: unknown; everySeconds?: unknown } | null | undefined;
    if (raw && typeof raw === 'object' && ((raw.cron !== undefined && typeof raw.cron !== 'string') || (raw.everySeconds !== undefined && typeof raw.everySeconds !== 'number'))) {
      throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', 'cron is a string and everySeconds a number');
    }
    const body = parseRequest(CreateScheduleRequest, request.body);
    const view = await schedules.create(body, request.principal!.actor);
    auditSchedule(request, view);
    return reply.code(201).send(view);
  });
  app.get('/v1/schedules', { config: { permission: 'runs.read' } }, async (request) => {
    parseRequest(NoQuery, request.query, 'query');
    return { schedules: await schedules.list() };
  });
  app.get('/v1/schedules/:id', { config: { permission: 'runs.read' } }, async (request) => schedules.get(refOf(request)));
  app.post('/v1/schedules/:id/pause', { config: { permission: 'schedules.manage', audit: 'schedule.pause' } }, async (request) => {
    const view = await schedules.setPaused(refOf(request), true);
    auditSchedule(request, view);
    return view;
  });
  app.post('/v1/schedules/:id/resume', { config: { permission: 'schedules.manage', audit: 'schedule.resume' } }, async (request) => {
    const view = await schedules.setPaused(refOf(request), false);
    auditSchedule(request, view);
    return view;
  });
  app.delete('/v1/schedules/:id', { config: { permission: 'schedules.manage', audit: 'schedule.delete' } }, async (request) => {
    const view = await schedules.remove(refOf(request));
    auditSchedule(request, view);
    return view;
  });
}
