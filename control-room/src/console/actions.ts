import { timingSafeEqual } from 'node:crypto';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BotName, BotVersion, hasCode, OrderlyError, PromoteRequest } from '@orderly/shared';
import { segmentsWith } from '../access/bindings';
import { can, Permission, Principal } from '../access/permissions';
import { assertReadsPhi, auditPhiRead, checkReason } from '../access/phi';
import type { AccessRequests } from '../access/requests';
import type { RequestContext } from '../credentials/credentials';
import { CredentialParams, RotateCredentialRequest, SetCredentialRequest } from '@orderly/shared';
import type { AppDeps } from '../http/app';
import { parseRequest } from '../http/errors';
import { expectNoFields, formFields } from './request-body';
import { CreateUserRequest, IdParam, RegisterRunnerRequest, SetRolesRequest, StepUpRequest } from '../identity/schemas';
import { assertSchedulesIn } from '../schedules/routes';
import { CreateScheduleRequest } from '@orderly/shared';
import { credentialsTable, doneBanner, promoteForm, ShownOnce, stepUpForm, stepUpNote } from './forms';
import { consolePath, Html, html } from './html';
import { cancellableRuns, RunsFilter } from './queries';

/** How long a revealed screenshot's link opens it. */
const SCREENSHOT_LINK_MS = 60_000;

/** At most this many runs are cancelled by one bulk cancel; a wider filter is refused. */
export const BULK_CANCEL_MAX = 100;

const RunParam = z.strictObject({ id: z.uuid() });
const NameVersion = z.strictObject({ name: BotName, version: BotVersion });
const RequestParam = z.strictObject({ id: z.uuid() });
const Reason = z.strictObject({ reason: z.string().max(1000) });
const Text = z.string().max(10_000);

/** A form's optional field: an empty input is no value. */
const opt = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());
/** Role bindings typed into one field, space- or comma-separated. */
const bindings = (v: string | undefined): string[] => (v ?? '').split(/[\s,]+/).filter(Boolean);
/** A number typed into a form field; anything else stays as typed, for the API schema to refuse. */
const num = (v: string | undefined): number | string | undefined => (opt(v) === undefined ? undefined : /^\d{1,9}$/.test(v!.trim()) ? Number(v) : v);

/** Where a step-up may send the person back to: a console page, nothing else. */
export function safeNext(next: unknown): string {
  const ok =
    typeof next === 'string' &&
    next.length <= 500 &&
    /^\/console(\/[A-Za-z0-9/_.@-]*)?(\?[A-Za-z0-9=&%._@+-]*)?$/.test(next) &&
    !/\/\.\.?(\/|\?|$)|\/\//.test(next);
  return ok ? next : '/console';
}

export interface ActionKit {
  send(request: FastifyRequest, reply: FastifyReply, title: string, body: Html): unknown;
  who(request: FastifyRequest): Principal;
  segments: readonly string[];
  access: AccessRequests | undefined;
}

interface RouteOptions {
  permission: Permission;
  stepUp?: boolean;
  audit?: string;
  auditedByRoute?: 'all' | 'success';
}

/**
 * The console's changes of state. Each route declares the permission and step-up of the API route
 * that makes the same change (the request hook checks them, and CSRF, before the handler), and calls
 * the same service with the same checks: the console is another door to the same rooms, never a
 * second implementation. Successes redirect to the page with a fixed outcome text, or answer a
 * one-time value as JSON that console.js puts in the page (never in a URL or storage).
 */
export function consoleActions(scope: FastifyInstance, deps: AppDeps, kit: ActionKit): void {
  const identity = deps.identity!;
  const route = (method: 'GET' | 'POST', url: string, options: RouteOptions, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    scope.route({
      method,
      url,
      config: {
        permission: options.permission,
        ...(options.stepUp ? { stepUp: true } : {}),
        ...(options.audit ? { audit: options.audit } : {}),
        ...(options.auditedByRoute ? { auditedByRoute: options.auditedByRoute } : {}),
      },
      handler,
    });
  const form = (request: FastifyRequest) => formFields(request.body);
  const noFields = (request: FastifyRequest) => expectNoFields(request.body);
  const done = (reply: FastifyReply, path: string, what: string, query: Record<string, string | number | undefined> = {}) =>
    reply.redirect(consolePath(path, { ...query, done: what }), 303);
  const once = (reply: FastifyReply, answer: ShownOnce) => reply.header('cache-control', 'no-store').send(answer);
  // A revealed screenshot is fetched by an <img>, which cannot send a reason: the reveal (which
  // audited the read with its reason) hands out a link signed for this person, run, shot and minute.
  const screenshotSig = (actor: string, runId: string, shot: number, exp: number) =>
    deps.audit.hash(`console-screenshot-link/v1|${actor}|${runId}|${shot}|${exp}`);

  // ---- Step-up: a fresh second factor for this session, as `POST /v1/session/step-up` does.
  route('GET', '/console/step-up', { permission: 'self' }, async (request, reply) => {
    const next = safeNext((request.query as { next?: unknown }).next);
    return kit.send(
      request,
      reply,
      'Step up',
      html`<p>Some changes need a second factor from the last 5 minutes. Enter a current code from your authenticator app; you go back to the page you came from.</p>${stepUpForm(next)}`,
    );
  });
  route('POST', '/console/step-up', { permission: 'self', audit: 'session.step_up' }, async (request, reply) => {
    const body = form(request);
    const { code } = parseRequest(StepUpRequest, { code: body.code ?? '' });
    const principal = kit.who(request);
    if (principal.kind !== 'user' || principal.credential?.kind !== 'session')
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'step-up is for console sessions; API tokens send the X-Orderly-TOTP header');
    if (!(await identity.users.stepUp(principal.id, code))) throw new OrderlyError('ORDERLY_E_SIGN_IN_FAILED', 'the code is wrong or was already used');
    await identity.sessions.markSteppedUp(principal.credential.sessionHash);
    const next = safeNext(body.next);
    return reply.redirect(consolePath(next.split('?')[0]!, { ...Object.fromEntries(new URLSearchParams(next.split('?')[1] ?? '')), done: 'stepped-up' }), 303);
  });

  // ---- Run detail: reveal the input and result with a reason (the API's PHI read, audited).
  route('POST', '/console/runs/:id/reveal', { permission: 'runs.read_phi.dev', audit: 'run.reveal' }, async (request, reply) => {
    const { id } = parseRequest(RunParam, request.params, 'path');
    const reason = checkReason(parseRequest(Reason, form(request)).reason);
    const view = await deps.runs.get(id);
    assertReadsPhi(request, view, deps.prodSegments ?? []);
    const [phi, shots] = await Promise.all([deps.runs.readPhi(view.id), deps.screenshots.list(view.id)]);
    await auditPhiRead(deps.audit.log, request, view, 'result', reason);
    const actor = kit.who(request).actor;
    const exp = Date.now() + SCREENSHOT_LINK_MS;
    const images = [];
    for (const shot of shots) {
      await auditPhiRead(deps.audit.log, request, view, 'screenshot', reason, { shot: shot.id });
      images.push({
        label: `Screenshot ${shot.name} (attempt ${shot.attempt}, masked)`,
        image: consolePath(`/console/runs/${view.id}/screenshots/${shot.id}`, { exp, sig: screenshotSig(actor, view.id, shot.id, exp) }),
      });
    }
    return once(reply, {
      show: {
        title: 'Input and result',
        note: 'Shown once, in this page only; reload to hide. This read is in the audit log with your reason.',
        items: [
          { label: 'Input', text: JSON.stringify(phi.input, null, 2) },
          { label: 'Result', text: phi.result === null || phi.result === undefined ? '(no result)' : JSON.stringify(phi.result, null, 2) },
          ...images,
        ],
      },
    });
  });
  route('GET', '/console/runs/:id/screenshots/:shot', { permission: 'runs.read_phi.dev' }, async (request, reply) => {
    const { id, shot } = parseRequest(z.strictObject({ id: z.uuid(), shot: z.coerce.number().int().positive() }), request.params, 'path');
    const q = parseRequest(z.strictObject({ exp: z.coerce.number().int(), sig: z.string().max(100) }), request.query, 'query');
    const expected = Buffer.from(screenshotSig(kit.who(request).actor, id, shot, q.exp));
    const given = Buffer.from(q.sig);
    if (q.exp < Date.now() || q.exp > Date.now() + SCREENSHOT_LINK_MS || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new OrderlyError('ORDERLY_E_REASON_REQUIRED', 'a screenshot opens from a reveal with a reason; its link lasts a minute');
    }
    const view = await deps.runs.get(id);
    assertReadsPhi(request, view, deps.prodSegments ?? []);
    return reply
      .type('image/png')
      .header('cache-control', 'no-store')
      .send(await deps.screenshots.png(id, shot));
  });

  // ---- Runs: cancel by filter, previewed, at most BULK_CANCEL_MAX, each run as `POST /v1/runs/:id/cancel` does.
  if (deps.cancellation) {
    const cancellation = deps.cancellation;
    route('POST', '/console/runs/cancel', { permission: 'runs.cancel', audit: 'run.cancel_bulk' }, async (request, reply) => {
      const body = form(request);
      const { intent = '', reason = '', ...fields } = body;
      if (intent !== 'preview' && intent !== 'cancel') throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'intent is preview or cancel');
      const filter = parseRequest(RunsFilter, Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== '' && k !== 'after')), 'filters');
      const clean = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined && v !== '')) as Record<string, string>;
      const ids = await cancellableRuns(deps.db, filter, segmentsWith(request.principal, 'runs.cancel'), BULK_CANCEL_MAX + 1);
      const matched = ids.length > BULK_CANCEL_MAX ? `more than ${BULK_CANCEL_MAX}` : String(ids.length);
      if (intent === 'preview') return reply.redirect(consolePath('/console/runs', { ...clean, cancelPreview: matched }), 303);
      const why = checkReason(reason);
      if (ids.length > BULK_CANCEL_MAX) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `more than ${BULK_CANCEL_MAX} runs match: narrow the filter`);
      let cancelled = 0;
      for (const runId of ids) {
        try {
          const answer = await cancellation.cancel(runId);
          cancelled += 1;
          await deps.audit.log.append({
            actor: kit.who(request).actor,
            action: 'run.cancel',
            target: `run:${runId}`,
            outcome: 'success',
            sourceIp: request.ip,
            requestId: request.id,
            details: { reason: why, previous: answer.previous, bulk: true },
          });
        } catch (err) {
          // Finished meanwhile: nothing to cancel. Anything else is a real failure.
          if (!hasCode(err, 'ORDERLY_E_RUN_NOT_CANCELLABLE')) throw err;
        }
      }
      request.auditDetails = { matched: ids.length, cancelled };
      return reply.redirect(consolePath('/console/runs', { ...clean, cancelled }), 303);
    });
  }

  // ---- Schedules: create, as `POST /v1/schedules` does (segment bindings, the service's checks).
  if (deps.schedules) {
    const schedules = deps.schedules;
    route('POST', '/console/schedules', { permission: 'schedules.manage', audit: 'schedule.create' }, async (request, reply) => {
      const f = form(request);
      let input: unknown = {};
      if (opt(f.input) !== undefined) {
        try {
          input = JSON.parse(Text.parse(f.input));
        } catch {
          throw new OrderlyError('ORDERLY_E_INPUT_INVALID', 'the input is a JSON object');
        }
      }
      const everySeconds = num(f.everySeconds);
      if (typeof everySeconds === 'string') throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', 'every N seconds takes a whole number');
      const body = parseRequest(CreateScheduleRequest, {
        name: f.name ?? '',
        bot: f.bot ?? '',
        input,
        ...(opt(f.version) ? { version: opt(f.version) } : {}),
        ...(opt(f.segment) ? { segment: opt(f.segment) } : {}),
        ...(opt(f.cron) ? { cron: opt(f.cron) } : {}),
        ...(everySeconds !== undefined ? { everySeconds } : {}),
        ...Object.fromEntries((['timeZone', 'calendar', 'calendarPolicy', 'overlap', 'misfire'] as const).flatMap((k) => (opt(f[k]) ? [[k, opt(f[k])]] : []))),
      });
      assertSchedulesIn(request, body.segment);
      const view = await schedules.create(body, kit.who(request).actor);
      request.auditTarget = `schedule:${view.id}`;
      request.auditDetails = { scheduleId: view.id, bot: view.bot, segment: view.segment };
      return done(reply, '/console/schedules', 'created');
    });
  }

  // ---- Bots: promotion for approvers, after reading the permission diff; step-up like the API.
  route('GET', '/console/bots/:name/:version/promote', { permission: 'packages.promote' }, async (request, reply) => {
    const { name, version } = parseRequest(NameVersion, request.params, 'path');
    const diff = await deps.releases.permissions(name, version);
    return kit.send(
      request,
      reply,
      `Promote ${name} ${version}`,
      html`${doneBanner((request.query as { done?: string }).done)}${stepUpNote(request.url.split('?')[0]!)}${promoteForm(diff)}`,
    );
  });
  route('POST', '/console/bots/:name/:version/promote', { permission: 'packages.promote', stepUp: true, audit: 'package.promote' }, async (request, reply) => {
    const { name, version } = parseRequest(NameVersion, request.params, 'path');
    const f = form(request);
    // The acknowledgement is the digest of the diff the page showed, sent only when the box is ticked.
    const body = parseRequest(PromoteRequest, {
      channel: 'prod',
      ...(opt(f.ticket) ? { ticket: opt(f.ticket) } : {}),
      ...(num(f.expiresInDays) !== undefined ? { expiresInDays: num(f.expiresInDays) } : {}),
      ...(f.acknowledge === 'yes' && opt(f.acknowledgePermissions) ? { acknowledgePermissions: opt(f.acknowledgePermissions) } : {}),
    });
    const p = kit.who(request);
    await deps.releases.promote(name, version, body, { id: p.id, actor: p.actor, kind: p.kind });
    return done(reply, '/console/bots', 'promoted');
  });

  // ---- Credentials: status for the security team; set, rotate and revoke runs with step-up.
  const credentialContext = (request: FastifyRequest): RequestContext => ({ actor: kit.who(request).actor, sourceIp: request.ip, requestId: request.id });
  route('GET', '/console/credentials', { permission: 'credentials.read' }, async (request, reply) => {
    const manage = can(kit.who(request), 'credentials.manage');
    let body: Html;
    try {
      body = credentialsTable(await deps.credentials.status(), manage);
    } catch (err) {
      if (!hasCode(err, 'ORDERLY_E_VAULT_NOT_CONFIGURED')) throw err;
      body = html`<p class="banner warn" role="status">This control room has no Vault (VAULT_ADDR): bot credentials cannot be read or written here.</p>`;
    }
    const q = request.query as { done?: string };
    return kit.send(
      request,
      reply,
      'Credentials',
      html`${doneBanner(q.done)}${manage ? stepUpNote('/console/credentials') : ''}
<p class="muted">Values are typed into a password field, sent once and never shown, logged or kept in the browser.</p>${body}`,
    );
  });
  for (const verb of ['set', 'rotate'] as const) {
    route(
      'POST',
      `/console/credentials/:bot/:name/${verb}`,
      { permission: 'credentials.manage', stepUp: true, auditedByRoute: 'all' },
      async (request, reply) => {
        const ctx = credentialContext(request);
        const target = parseRequest(CredentialParams, request.params, 'path');
        const f = form(request);
        if (verb === 'set') {
          const body = await deps.credentials.parseAudited('set', ctx, target, () => parseRequest(SetCredentialRequest, { value: f.value ?? '' }));
          await deps.credentials.set(ctx, target, body);
        } else {
          const expected = num(f.expectedVersion);
          const body = await deps.credentials.parseAudited('rotate', ctx, target, () =>
            parseRequest(RotateCredentialRequest, { value: f.value ?? '', ...(expected !== undefined ? { expectedVersion: expected } : {}) }),
          );
          await deps.credentials.rotate(ctx, target, body);
        }
        return done(reply, '/console/credentials', verb === 'set' ? 'set' : 'rotated');
      },
    );
  }
  route('POST', '/console/credentials/:bot/revoke-runs', { permission: 'credentials.manage', stepUp: true, auditedByRoute: 'all' }, async (request, reply) => {
    const { bot } = parseRequest(CredentialParams.pick({ bot: true }), request.params, 'path');
    noFields(request);
    await deps.credentials.revokeRuns(credentialContext(request), bot);
    return done(reply, '/console/credentials', 'runs-revoked');
  });

  // ---- Runners: register (step-up; a production one waits for a second person) and revoke.
  const access = kit.access;
  if (access) {
    route('POST', '/console/runners', { permission: 'runners.manage', stepUp: true, audit: 'runner.register' }, async (request, reply) => {
      const f = form(request);
      const body = parseRequest(RegisterRunnerRequest, {
        name: f.name ?? '',
        segment: f.segment ?? '',
        ...(opt(f.publicKey) ? { publicKey: opt(f.publicKey) } : {}),
      });
      const registered = await access.registerRunner(kit.who(request), body.name, body.segment, body.publicKey);
      request.auditTarget = `runner:${registered.id}`;
      const items = [{ label: 'Runner token (its ORDERLY_RUNNER_TOKEN_FILE)', text: registered.token }];
      return once(reply, {
        show: {
          title: `Runner ${registered.name} registered`,
          note: `${registered.request ? 'A production runner: the token admits nothing until a second security person approves the access request. ' : ''}Copy these now: they are shown once and not kept anywhere.`,
          items,
        },
      });
    });
    route('POST', '/console/runners/:id/revoke', { permission: 'runners.manage', audit: 'runner.revoke' }, async (request, reply) => {
      const { id } = parseRequest(IdParam, request.params, 'path');
      noFields(request);
      await identity.runners.revoke(id);
      return done(reply, '/console/runners', 'runner-revoked');
    });

    // ---- People: add, set roles (both step-up; sensitive grants wait for a second person), disable, unlock, decide requests.
    route('POST', '/console/people', { permission: 'users.manage', stepUp: true, audit: 'user.create' }, async (request, reply) => {
      const f = form(request);
      const body = parseRequest(CreateUserRequest, { username: f.username ?? '', roles: bindings(f.roles) });
      const created = await access.createUser(kit.who(request), body.username, body.roles);
      request.auditTarget = `user:${created.user.id}`;
      return once(reply, {
        show: {
          title: `${created.user.username} added`,
          note: `${created.request ? `Waiting for a second security person: ${created.request.rolesAfter.join(', ')}. ` : ''}Give the enrolment secret to the person over a separate channel; they enrol with it (orderly enrol) before ${created.enrolmentExpiresAt}. It is shown once.`,
          items: [{ label: 'Enrolment secret', text: created.enrolmentSecret }],
        },
      });
    });
    route('POST', '/console/people/:id/roles', { permission: 'users.manage', stepUp: true, audit: 'user.roles' }, async (request, reply) => {
      const { id } = parseRequest(IdParam, request.params, 'path');
      const { roles } = parseRequest(SetRolesRequest, { roles: bindings(form(request).roles) });
      const changed = await access.setRoles(kit.who(request), id, roles);
      return done(reply, '/console/people', changed.request ? 'roles-requested' : 'roles');
    });
    route('POST', '/console/people/:id/disable', { permission: 'users.manage', audit: 'user.disable' }, async (request, reply) => {
      const { id } = parseRequest(IdParam, request.params, 'path');
      noFields(request);
      await identity.users.disable(id);
      return done(reply, '/console/people', 'disabled');
    });
    route('POST', '/console/people/:id/unlock', { permission: 'users.manage', audit: 'user.unlock' }, async (request, reply) => {
      const { id } = parseRequest(IdParam, request.params, 'path');
      noFields(request);
      await identity.users.unlock(id);
      return done(reply, '/console/people', 'unlocked');
    });
    for (const [verb, decision] of [
      ['approve', 'approved'],
      ['reject', 'rejected'],
    ] as const) {
      route('POST', `/console/access-requests/:id/${verb}`, { permission: 'users.manage', stepUp: true }, async (request, reply) => {
        const { id } = parseRequest(RequestParam, request.params, 'path');
        noFields(request);
        await access.decide(kit.who(request), id, decision);
        return done(reply, '/console/people', decision);
      });
    }
  }
}
