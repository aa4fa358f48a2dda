import { createPublicKey, randomBytes } from 'node:crypto';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { canIn, segmentsWith } from '../access/bindings';
import { can, Permission, Principal } from '../access/permissions';
import { assertReadsPhi, assertSeesRun } from '../access/phi';
import type { AccessRequests } from '../access/requests';
import { scopedScheduleRef } from '../schedules/routes';
import { BULK_CANCEL_MAX, consoleActions } from './actions';
import { identityPages } from './identity-pages';
import { bulkCancelForm, doneBanner, peopleTables, revealForm, runnersTable, scheduleCreateForm, stepUpNote } from './forms';
import type { AppDeps } from '../http/app';
import { parseRequest, sendError, toErrorBody } from '../http/errors';
import { Sessions } from '../identity/sessions';
import { AuditVerifier } from '../audit/verify';
import { toCefLine, toJsonLine } from '../audit/export';
import { CONSOLE_CSS, CONSOLE_JS } from './assets';
import { expectNoFields } from './request-body';
import { consolePath, duration, Html, html, time } from './html';
import { NAV, page, PageContext, table } from './layout';
import { LiveHub, successRate } from './live';
import { auditSearch, AuditFilter, LOG_LEVELS, overview, runDetail, runLogs, runsPage, RunsFilter } from './queries';

/** The console's CSRF cookie: the session's token, so pages can hand it to console.js in a meta tag. */
export const CSRF_COOKIE = 'orderly_console_csrf';
/** Queue age over which the overview raises its banner. */
const QUEUE_AGE_ALERT_MS = 5 * 60_000;

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === name && v && /^[A-Za-z0-9_-]{16,128}$/.test(v)) return v;
  }
  return undefined;
}

/**
 * Content-Security-Policy for every console response: scripts only with this response's nonce
 * (the one script tag is our own file), styles only from our own stylesheet, nothing from any
 * other origin, no framing, forms post only here.
 */
function csp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

const DlqFilterForm = z.object({
  segment: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,31}$/)
    .optional()
    .catch(undefined),
  bot: z.string().min(1).max(100).optional().catch(undefined),
  errorCode: z
    .string()
    .regex(/^ORDERLY_E_[A-Z_]+$/)
    .optional()
    .catch(undefined),
});
const ReasonForm = z.object({ reason: z.string() });
const BulkForm = DlqFilterForm.extend({ reason: z.string().default(''), intent: z.enum(['preview', 'requeue']) });
const SignInForm = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024), code: z.string().min(1).max(32) });
const IdParam = z.object({ id: z.uuid() });

const blank = (v: string | undefined): string | undefined => (v === '' ? undefined : v);

/**
 * The web console at /console: server-rendered pages on the API's own sessions, permissions and
 * audit. Each route declares the permission of what it shows; the pages call the same services
 * the HTTP API calls (dead letters, identity) and read through `queries.ts`, which never selects
 * a run's input or result.
 */
/** A form that carries no fields. */

export function consoleRoutes(app: FastifyInstance, deps: AppDeps, options: { liveIntervalMs?: number; access?: AccessRequests | undefined } = {}): void {
  const identity = deps.identity;
  if (!identity) return;
  const segments = [...deps.tokens.runnerTokenHashes.keys()].map(String);
  const hub = new LiveHub({
    db: deps.db,
    segments,
    intervalMs: options.liveIntervalMs ?? 1000,
    log: deps.log,
    // Read without touching the idle clock: an open stream must not keep a session alive.
    sessionAlive: async (hash) => {
      const rows = await deps.db.query<{ ok: boolean }>(
        `SELECT (last_seen_at + make_interval(mins => $2) > now() AND expires_at > now()) AS ok FROM sessions WHERE id_hash = $1`,
        [hash, identity.settings.sessionIdleMinutes],
      );
      return rows[0]?.ok === true;
    },
  });
  app.addHook('onClose', async () => hub.close());

  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });
    scope.decorateRequest('cspNonce', '');
    scope.addHook('onRequest', async (request, reply) => {
      request.cspNonce = randomBytes(16).toString('base64');
      reply
        .header('content-security-policy', csp(request.cspNonce))
        .header('x-content-type-options', 'nosniff')
        .header('x-frame-options', 'DENY')
        .header('referrer-policy', 'no-referrer')
        .header('cross-origin-opener-policy', 'same-origin')
        .header('cross-origin-resource-policy', 'same-origin');
      if (!request.url.startsWith('/console/assets/')) reply.header('cache-control', 'no-store');
    });
    // Pages answer errors as pages: no session goes to sign-in; a form's fetch gets the coded JSON.
    scope.setErrorHandler((err, request, reply) => {
      // API clients (and the access matrix test) get the API's coded JSON; browsers get pages.
      if (request.method !== 'GET' || !(request.headers.accept ?? '').includes('text/html')) return sendError(err, request, reply);
      const { status, body } = toErrorBody(err, request);
      request.errorCode = body.code;
      if (body.code === 'ORDERLY_E_UNAUTHENTICATED' || body.code === 'ORDERLY_E_SESSION_EXPIRED') {
        const reason = body.code === 'ORDERLY_E_SESSION_EXPIRED' ? 'expired' : undefined;
        return reply.header('set-cookie', [Sessions.clearCookie(), clearCsrfCookie()]).redirect(consolePath('/console/login', { reason }), 303);
      }
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(
          page(
            ctx(request),
            status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong',
            html`<p class="banner error" role="alert">${body.code}: ${body.message}</p><p><a href="/console">Back to the overview</a></p>`,
          ),
        );
    });

    const ctx = (request: FastifyRequest): PageContext => ({
      principal: request.principal,
      csrfToken: cookieValue(request.headers.cookie, CSRF_COOKIE),
      idleMinutes: identity.settings.sessionIdleMinutes,
      path: request.routeOptions.url?.replace(/\/:id.*$/, '') ?? '',
      nonce: request.cspNonce,
    });
    const send = (request: FastifyRequest, reply: FastifyReply, title: string, body: Html) =>
      reply.type('text/html; charset=utf-8').send(page(ctx(request), title, body));
    const get = (url: string, permission: Permission, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
      scope.get(url, { config: { permission } }, handler);
    const post = (url: string, permission: Permission, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
      scope.post(url, { config: { permission } }, handler);
    const who = (request: FastifyRequest): Principal => {
      if (!request.principal) throw new OrderlyError('ORDERLY_E_UNAUTHENTICATED', 'sign in first');
      return request.principal;
    };
    const actorOf = (request: FastifyRequest) => ({ actor: who(request).actor, sourceIp: request.ip, requestId: String(request.id) });

    get('/console/assets/console.js', 'public', async (_request, reply) =>
      reply.type('text/javascript; charset=utf-8').header('cache-control', 'max-age=300').send(CONSOLE_JS),
    );
    get('/console/assets/console.css', 'public', async (_request, reply) =>
      reply.type('text/css; charset=utf-8').header('cache-control', 'max-age=300').send(CONSOLE_CSS),
    );

    // Sign-in: password and TOTP, always both, on the same sessions as the API.
    get('/console/login', 'public', async (request, reply) => {
      const reason = (request.query as { reason?: string }).reason;
      const note =
        reason === 'idle' || reason === 'expired'
          ? html`<p class="banner warn" role="status">You were signed out after ${identity.settings.sessionIdleMinutes} minutes without activity, or your session reached its limit.</p>`
          : '';
      return send(
        request,
        reply,
        'Sign in',
        html`${note}
<form method="post" action="/console/login" class="login">
  <label for="username">Username <input id="username" name="username" autocomplete="username" required maxlength="64"></label>
  <label for="password">Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
  <label for="code">Authenticator code <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="32"></label>
  <button type="submit">Sign in</button>
</form>${deps.sso ? html`<p><a href="/v1/auth/sso/start">Sign in with SSO</a></p>` : ''}`,
      );
    });
    post('/console/login', 'public', async (request, reply) => {
      const body = parseRequest(SignInForm, request.body);
      request.auditTarget = `user:${body.username}`;
      const user = await identity.signInLocally(body.username, body.password, body.code, 'console', { sourceIp: request.ip, requestId: String(request.id) });
      const session = await identity.sessions.create(user.id);
      return reply
        .header('set-cookie', [identity.sessions.cookie(session.sessionId), csrfCookie(session.csrfToken, identity.settings.sessionMaxHours)])
        .redirect('/console', 303);
    });
    post('/console/logout', 'self', async (request, reply) => {
      expectNoFields(request.body); // the sign-out form sends nothing
      const credential = who(request).credential;
      if (credential?.kind === 'session') await identity.sessions.end(credential.sessionHash);
      return reply.header('set-cookie', [Sessions.clearCookie(), clearCsrfCookie()]).redirect('/console/login', 303);
    });

    // Overview: counts per segment, runners, alerts; live through one stream per session.
    get('/console', 'self', async (request, reply) => {
      const p = who(request);
      if (!can(p, 'runs.read')) {
        return send(request, reply, 'Overview', html`<p>Signed in as ${p.actor}. Your roles open these pages:</p><ul>${pagesFor(p)}</ul>`);
      }
      // Only the segments the reader's bindings cover, as on every page and in the stream.
      const readable = segmentsWith(request.principal, 'runs.read');
      const sees = (segment: string | null) => readable === 'all' || (segment !== null && readable.has(segment));
      const all = await overview(deps.db, segments);
      const o = {
        segments: all.segments.filter((s) => sees(s.segment)),
        runners: all.runners.filter((r) => sees(r.segment)),
        recent: all.recent.filter((r) => sees(r.segment)),
      };
      const now = Date.now();
      const alerts: Html[] = [];
      for (const s of o.segments) {
        if (s.deadLettered > 0)
          alerts.push(
            html`<li>${s.segment}: ${s.deadLettered} dead letter(s) waiting for an operator${can(p, 'dlq.read') ? html` — <a href="${consolePath('/console/dead-letters', { segment: s.segment })}">work them</a>` : ''}</li>`,
          );
        if (s.oldestWaitingAt && now - Date.parse(s.oldestWaitingAt) > QUEUE_AGE_ALERT_MS)
          alerts.push(html`<li>${s.segment}: the oldest waiting run has waited ${duration(now - Date.parse(s.oldestWaitingAt))}</li>`);
      }
      const gone = o.runners.filter((r) => !r.revoked && r.lastSeenAt && now - Date.parse(r.lastSeenAt) > 3600_000);
      for (const r of gone) alerts.push(html`<li>runner ${r.runner} (${r.segment ?? '?'}) last seen ${duration(now - Date.parse(r.lastSeenAt!))} ago</li>`);
      const card = (
        s: (typeof o.segments)[number],
      ) => html`<section class="card" aria-labelledby="seg-${s.segment}"><h2 id="seg-${s.segment}">${s.segment}</h2><dl>
<dt>Waiting</dt><dd data-live="${s.segment}.waiting">${s.waiting}</dd>
<dt>Retry pending</dt><dd data-live="${s.segment}.retrying">${s.retrying}</dd>
<dt>Active</dt><dd data-live="${s.segment}.active">${s.active}</dd>
<dt>Dead letters</dt><dd data-live="${s.segment}.deadLettered">${s.deadLettered}</dd>
<dt>Oldest waiting since</dt><dd data-live="${s.segment}.oldestWaiting">${s.oldestWaitingAt ?? '—'}</dd>
<dt>Runs per minute (5 min)</dt><dd data-live="${s.segment}.perMinute">${(s.finishedLast5Min / 5).toFixed(1)}</dd>
<dt>Success rate (5 min)</dt><dd data-live="${s.segment}.successRate">${successRate(s)}</dd>
</dl></section>`;
      return send(
        request,
        reply,
        'Overview',
        html`<div data-live-stream="/console/events" data-live-seq="0">
${alerts.length ? html`<div class="banner warn" role="alert"><strong>Needs attention</strong><ul>${alerts}</ul></div>` : html`<p class="banner ok">No dead letters, no queue over ${duration(QUEUE_AGE_ALERT_MS)}, no runner gone.</p>`}
<div class="cards">${o.segments.map(card)}</div>
<h2>Latest runs</h2>
<ul id="recent-runs">${o.recent.length ? o.recent.map((r) => html`<li><a href="/console/runs/${r.id}">${r.bot} ${r.version}</a> <span class="status status-${r.status}">${r.status}</span></li>`) : html`<li class="empty">No runs yet.</li>`}</ul>
${table(
  'Runners',
  ['Runner', 'Segment', 'Last seen', 'State'],
  o.runners.map(
    (r) => html`<tr><td>${r.runner}</td><td>${r.segment ?? '—'}</td><td>${time(r.lastSeenAt)}</td><td>${r.revoked ? 'revoked' : 'registered'}</td></tr>`,
  ),
  'No runner has registered or claimed a run in the last day.',
)}
</div>`,
      );
    });
    get('/console/events', 'runs.read', async (request, reply) => {
      const credential = who(request).credential;
      // One stream per console session; API clients poll the API instead.
      if (credential?.kind !== 'session') throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'the live stream is for console sessions');
      const key = credential.sessionHash;
      // A run detail page follows its run's log on the same stream.
      const q = parseRequest(
        z.object({
          follow: z.uuid().optional(),
          after: z
            .string()
            .regex(/^\d{1,9}\.\d{1,9}$/)
            .optional(),
        }),
        request.query,
        'query',
      );
      let follow: { runId: string; attempt: number; seq: number } | undefined;
      if (q.follow) {
        const [run] = await deps.db.query<{ id: string; segment: string }>('SELECT id, segment FROM runs WHERE id = $1', [q.follow]);
        if (!run) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${q.follow}`);
        assertSeesRun(request, run);
        const [attempt, seq] = (q.after ?? '0.0').split('.').map(Number);
        follow = { runId: run.id, attempt: attempt!, seq: seq! };
      }
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        connection: 'keep-alive',
      });
      reply.raw.write('retry: 5000\n\n');
      hub.subscribe(key, reply.raw, follow, segmentsWith(request.principal, 'runs.read'));
    });

    // Runs: filters in the URL, keyset pages.
    get('/console/runs', 'runs.read', async (request, reply) => {
      // The outcome of a bulk cancel rides along in the URL; the rest is the filter.
      const { cancelPreview: _preview, cancelled: _cancelled, ...query } = request.query as Record<string, string | undefined>;
      const filter = parseRequest(RunsFilter, query, 'filters');
      const { rows, next } = await runsPage(deps.db, filter, segmentsWith(request.principal, 'runs.read'));
      const f = {
        bot: blank(filter.bot),
        version: blank(filter.version),
        segment: blank(filter.segment),
        status: blank(filter.status),
        from: blank(filter.from),
        to: blank(filter.to),
      };
      const q = request.query as Record<string, string | undefined>;
      const cancelPreview =
        q.cancelPreview && /^(\d{1,3}|more than \d{1,3})$/.test(q.cancelPreview)
          ? html`<p class="banner info" role="status">${q.cancelPreview} waiting or active run(s) match this filter; cancel them below with a reason (at most ${BULK_CANCEL_MAX}).</p>`
          : '';
      const cancelled = q.cancelled && /^\d{1,3}$/.test(q.cancelled) ? html`<p class="banner ok" role="status">${q.cancelled} run(s) cancelled.</p>` : '';
      const canCancel = deps.cancellation !== undefined && can(who(request), 'runs.cancel');
      return send(
        request,
        reply,
        'Runs',
        html`${cancelPreview}${cancelled}<form method="get" action="/console/runs" class="filters" role="search">
<label>Bot <input name="bot" value="${f.bot ?? ''}"></label>
<label>Version <input name="version" value="${f.version ?? ''}"></label>
<label>Segment <select name="segment"><option value="">any</option>${segments.map((s) => html`<option${s === f.segment ? html` selected` : ''}>${s}</option>`)}</select></label>
<label>Status <select name="status"><option value="">any</option>${['waiting', 'active', 'succeeded', 'failed', 'dead_lettered', 'cancelled', 'discarded'].map((s) => html`<option${s === f.status ? html` selected` : ''}>${s}</option>`)}</select></label>
<label>Created from (UTC) <input name="from" type="datetime-local" value="${f.from ?? ''}"></label>
<label>Created before (UTC) <input name="to" type="datetime-local" value="${f.to ?? ''}"></label>
<button type="submit">Filter</button> <a href="/console/runs">Clear</a>
</form>
${canCancel ? bulkCancelForm(f, BULK_CANCEL_MAX) : ''}
${table(
  'Runs, newest first',
  ['Run', 'Bot', 'Version', 'Segment', 'Status', 'Attempts', 'Error', 'Created', 'Finished'],
  rows.map(
    (r) => html`<tr>
<td><a href="/console/runs/${r.id}">${r.id.slice(0, 8)}</a></td><td>${r.bot}</td><td>${r.version}</td><td>${r.segment}</td><td class="status status-${r.status}">${r.status}</td>
<td>${r.attempts}</td><td>${r.errorCode ?? ''}</td><td>${time(r.createdAt)}</td><td>${time(r.finishedAt)}</td></tr>`,
  ),
  'No runs match these filters.',
)}
${next ? html`<p><a rel="next" href="${consolePath('/console/runs', { ...f, after: next })}">Older runs</a></p>` : ''}`,
      );
    });
    get('/console/runs/:id', 'runs.read', async (request, reply) => {
      const { id } = parseRequest(IdParam, request.params, 'path');
      const level = z
        .enum(LOG_LEVELS)
        .catch('debug')
        .parse((request.query as { level?: string }).level);
      const [d, logs] = await Promise.all([runDetail(deps.db, id), runLogs(deps.db, id, level)]);
      const r = d.run;
      // Role bindings are per segment: another segment's run answers like a missing one, as in the API.
      assertSeesRun(request, r);
      const mayReveal = (() => {
        try {
          assertReadsPhi(request, r, deps.prodSegments ?? []);
          return true;
        } catch {
          return false;
        }
      })();
      const last = logs[logs.length - 1];
      const finished = ['succeeded', 'failed', 'dead_lettered', 'cancelled', 'discarded'].includes(r.status);
      return send(
        request,
        reply,
        `Run ${r.id.slice(0, 8)}`,
        html`<dl class="card">
<dt>Run</dt><dd>${r.id}</dd><dt>Bot</dt><dd>${r.bot} ${r.version}</dd><dt>Package</dt><dd>${r.digest}</dd>
<dt>Release</dt><dd>${d.release.length ? d.release.map((x) => html`${x.channel} (${time(x.at)}) `) : 'no release attestation (dev only)'}</dd>
<dt>Segment</dt><dd>${r.segment}</dd><dt>Status</dt><dd class="status status-${r.status}">${r.status}</dd>
<dt>Attempts</dt><dd>${r.attempts} of ${r.maxAttempts}${r.requeues ? `, requeued ${r.requeues} time(s)` : ''}</dd>
<dt>Created</dt><dd>${time(r.createdAt)}</dd><dt>Started</dt><dd>${time(r.startedAt)}</dd><dt>Finished</dt><dd>${time(r.finishedAt)}</dd>
${r.error ? html`<dt>Error</dt><dd>${r.error.code}: ${r.error.message}</dd>` : ''}
<dt>Input and result</dt><dd class="muted">Hidden: they may hold PHI.${mayReveal ? ' Reveal them below with a reason (audited).' : ''}</dd>
</dl>
${mayReveal ? revealForm(r.id) : ''}
${table(
  'Attempts',
  ['Attempt', 'Runner', 'Claimed', 'Duration', 'Outcome', 'Code'],
  d.attempts.map(
    (a) =>
      html`<tr><td>${a.attempt}</td><td>${a.runner}</td><td>${time(a.claimedAt)}</td><td>${a.finishedAt ? duration(Date.parse(a.finishedAt) - Date.parse(a.claimedAt)) : 'running'}</td><td>${a.outcome ?? '—'}</td><td>${a.code ?? ''}</td></tr>`,
  ),
  'No attempt yet: the run has not been claimed.',
)}
${table(
  'Steps',
  ['Step', 'Attempt', 'State', 'Started', 'Done'],
  d.steps.map(
    (s) =>
      html`<tr><td>${s.name}</td><td>${s.attempt}</td><td>${s.status === 'done' ? 'done' : 'uncertain (started, not recorded done)'}</td><td>${time(s.startedAt)}</td><td>${time(s.doneAt)}</td></tr>`,
  ),
  'No checkpointed steps.',
)}
${table(
  'Credential leases',
  ['Attempt', 'Vault accessor', 'Leased', 'Released'],
  d.leases.map((l) => html`<tr><td>${l.attempt}</td><td>${l.accessor}</td><td>${time(l.leasedAt)}</td><td>${time(l.releasedAt)}</td></tr>`),
  'No credentials were leased.',
)}
${d.screenshots.length ? html`<h2>Screenshots (masked)</h2><ul>${d.screenshots.map((s) => html`<li>${s.name} (attempt ${s.attempt})</li>`)}</ul><p class="muted">${mayReveal ? 'Shown with the input and result when you reveal them with a reason.' : 'Reading them needs the runs.read_phi permission in this segment.'}</p>` : ''}
<h2>Log (redacted)</h2>
<form method="get" action="/console/runs/${r.id}" class="filters"><label>Level at least <select name="level">${LOG_LEVELS.map((l) => html`<option${l === level ? html` selected` : ''}>${l}</option>`)}</select></label><button type="submit">Show</button></form>
${finished ? '' : html`<p id="log-follow" data-live-stream="${consolePath('/console/events', { follow: r.id, after: last ? `${last.attempt}.${last.seq}` : '0.0' })}" data-level="${level}" role="status" aria-live="polite">Following the log: new lines appear below as the run writes them.</p>`}
<pre class="log"${logs.length ? '' : html` hidden`}>${logs.map((l) => html`<span class="level-${l.level}">${l.at} ${l.level.toUpperCase()} [${l.source}] ${l.msg}</span>\n`)}</pre>${logs.length ? '' : html`<p class="empty" id="log-empty">No log lines at this level.</p>`}`,
      );
    });

    // Dead letters: filter, requeue one or in bulk (with a preview count), discard; always with a reason.
    if (deps.deadLetters) {
      const dlq = deps.deadLetters;
      // Role bindings are per segment, as in `GET /v1/dlq` and its actions: a caller bound to some
      // segments filters by one of them (the only one is implied); another segment's run is missing.
      // (A copy of dlq/routes.ts's rule, which is not exported: switch to it when it is.)
      const scoped = <F extends { segment?: string | undefined }>(request: FastifyRequest, permission: Permission, filter: F): F | undefined => {
        const allowed = segmentsWith(request.principal, permission);
        if (allowed === 'all') return filter;
        if (filter.segment !== undefined) return allowed.has(filter.segment) ? filter : undefined;
        if (allowed.size === 1) return { ...filter, segment: [...allowed][0] };
        throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'your role bindings cover several segments: choose one');
      };
      const assertInSegment = async (request: FastifyRequest, runId: string) => {
        const segment = await dlq.segmentOf(runId);
        if (segment === undefined || !canIn(request.principal, 'dlq.manage', segment)) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${runId}`);
      };
      get('/console/dead-letters', 'dlq.read', async (request, reply) => {
        const q = request.query as Record<string, string | undefined>;
        const filter = DlqFilterForm.parse({ segment: blank(q.segment), bot: blank(q.bot), errorCode: blank(q.errorCode) });
        const inScope = scoped(request, 'dlq.read', filter);
        const { entries } = inScope ? await dlq.list({ ...inScope, limit: 100 }) : { entries: [] };
        const manage = can(who(request), 'dlq.manage');
        const preview =
          q.preview !== undefined
            ? html`<p class="banner info" role="status">${Number(q.preview)} dead letter(s) match this filter; requeue them below with a reason.</p>`
            : '';
        const done =
          q.requeued !== undefined
            ? html`<p class="banner ok" role="status">${Number(q.requeued)} run(s) requeued.</p>`
            : q.discarded
              ? html`<p class="banner ok" role="status">Run discarded.</p>`
              : '';
        return send(
          request,
          reply,
          'Dead letters',
          html`${preview}${done}
<form method="get" action="/console/dead-letters" class="filters" role="search">
<label>Segment <select name="segment"><option value="">any</option>${segments.map((s) => html`<option${s === filter.segment ? html` selected` : ''}>${s}</option>`)}</select></label>
<label>Bot <input name="bot" value="${filter.bot ?? ''}"></label>
<label>Error code <input name="errorCode" value="${filter.errorCode ?? ''}"></label>
<button type="submit">Filter</button></form>
${
  manage
    ? html`<form method="post" action="/console/dead-letters/requeue" class="filters" aria-label="Requeue by filter">
<input type="hidden" name="segment" value="${filter.segment ?? ''}"><input type="hidden" name="bot" value="${filter.bot ?? ''}"><input type="hidden" name="errorCode" value="${filter.errorCode ?? ''}">
<label>Reason for requeueing all matching <input name="reason" maxlength="500" size="40"></label>
<button type="submit" name="intent" value="preview">Preview count</button>
<button type="submit" name="intent" value="requeue" data-confirm="Requeue every dead letter matching this filter (up to 100)?">Requeue all matching</button>
</form>`
    : ''
}
${table(
  'Dead letters, newest first',
  ['Run', 'Bot', 'Segment', 'Error', 'Attempts', 'Requeues', 'Dead-lettered', ...(manage ? ['Actions'] : [])],
  entries.map(
    (e) => html`<tr>
<td><a href="/console/runs/${e.runId}">${e.runId.slice(0, 8)}</a></td><td>${e.bot} ${e.version}</td><td>${e.segment}</td><td>${e.error ? html`${e.error.code}: ${e.error.message}` : ''}</td>
<td>${e.attempts}</td><td>${e.requeues}</td><td>${time(e.deadLetteredAt)}</td>
${
  manage
    ? html`<td><form method="post" action="/console/dead-letters/${e.runId}/requeue" class="inline"><label>Reason <input name="reason" required minlength="3" maxlength="500"></label> <button type="submit">Requeue</button></form>
<form method="post" action="/console/dead-letters/${e.runId}/discard" class="inline" data-confirm="Discard this run for good?"><label>Reason <input name="reason" required minlength="3" maxlength="500"></label> <button type="submit" class="danger">Discard</button></form></td>`
    : ''
}
</tr>`,
  ),
  'No dead letters match. Nothing waits for an operator.',
)}`,
        );
      });
      post('/console/dead-letters/requeue', 'dlq.manage', async (request, reply) => {
        const body = parseRequest(BulkForm, request.body);
        const filter = { segment: blank(body.segment), bot: blank(body.bot), errorCode: blank(body.errorCode) };
        const clean = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined));
        // A preview needs no reason; requeueing does (the service refuses a short one).
        const inScope = scoped(request, 'dlq.manage', clean);
        if (!inScope)
          return reply.redirect(consolePath('/console/dead-letters', body.intent === 'preview' ? { ...filter, preview: 0 } : { ...filter, requeued: 0 }), 303);
        const answer = await dlq.requeueMany(
          {
            filter: inScope,
            reason: body.intent === 'preview' && body.reason.trim().length < 3 ? 'preview only' : body.reason,
            limit: 100,
            dryRun: body.intent === 'preview',
          },
          actorOf(request),
        );
        const where = body.intent === 'preview' ? { ...filter, preview: answer.matched } : { ...filter, requeued: answer.requeued.length };
        return reply.redirect(consolePath('/console/dead-letters', where), 303);
      });
      post('/console/dead-letters/:id/requeue', 'dlq.manage', async (request, reply) => {
        const { id } = parseRequest(IdParam, request.params, 'path');
        await assertInSegment(request, id);
        await dlq.requeue(id, actorOf(request), parseRequest(ReasonForm, request.body).reason);
        return reply.redirect(consolePath('/console/dead-letters', { requeued: 1 }), 303);
      });
      post('/console/dead-letters/:id/discard', 'dlq.manage', async (request, reply) => {
        const { id } = parseRequest(IdParam, request.params, 'path');
        await assertInSegment(request, id);
        await dlq.discard(id, actorOf(request), parseRequest(ReasonForm, request.body).reason);
        return reply.redirect(consolePath('/console/dead-letters', { discarded: 1 }), 303);
      });
    }

    // Schedules: whoever reads runs sees them (never their input); operators pause, resume, delete.
    if (deps.schedules) {
      const schedules = deps.schedules;
      get('/console/schedules', 'runs.read', async (request, reply) => {
        // Within the reader's segments, as `GET /v1/schedules` answers.
        const readable = segmentsWith(request.principal, 'runs.read');
        const list = (await schedules.list()).filter((sc) => readable === 'all' || readable.has(sc.segment));
        const managed = segmentsWith(request.principal, 'schedules.manage');
        const manage = can(who(request), 'schedules.manage');
        const q = request.query as Record<string, string | undefined>;
        return send(
          request,
          reply,
          'Schedules',
          html`${doneBanner(q.done)}${table(
            'Schedules',
            [
              'Name',
              'Bot',
              'Segment',
              'When',
              'Time zone',
              'Calendar',
              'Overlap',
              'Misfire',
              'State',
              'Next fire',
              'Last fired',
              'Last error',
              ...(manage ? ['Actions'] : []),
            ],
            list.map(
              (sc) => html`<tr>
<td>${sc.name}</td><td>${sc.bot} ${sc.version ?? '(latest)'}</td><td>${sc.segment}</td><td>${sc.cron ? html`cron <code>${sc.cron}</code>` : `every ${sc.everySeconds ?? '?'} s`}</td>
<td>${sc.cron ? sc.timeZone : '—'}</td><td>${sc.calendar ? `${sc.calendar} (non-working day: ${sc.calendarPolicy === 'next_working_day' ? 'next working day' : 'skip'})` : '—'}</td>
<td>${sc.overlap === 'queue_one' ? 'queue one' : sc.overlap}${sc.queuedFireAt ? html` (queued: ${time(sc.queuedFireAt)})` : ''}</td><td>${sc.misfire === 'run_once' ? 'run once' : sc.misfire}</td>
<td>${sc.paused ? 'paused' : 'active'}</td><td>${time(sc.nextFireAt)}</td><td>${time(sc.lastFiredAt)}</td><td>${sc.lastErrorCode ?? ''}</td>
${
  manage
    ? html`<td>${
        sc.paused
          ? html`<form method="post" action="/console/schedules/${sc.id}/resume" class="inline"><button type="submit">Resume</button></form>`
          : html`<form method="post" action="/console/schedules/${sc.id}/pause" class="inline"><button type="submit">Pause</button></form>`
      }
<form method="post" action="/console/schedules/${sc.id}/delete" class="inline" data-confirm="Delete this schedule?"><button type="submit" class="danger">Delete</button></form></td>`
    : ''
}</tr>`,
            ),
            manage ? 'No schedules yet: create one below.' : 'No schedules.',
          )}
${manage ? scheduleCreateForm(managed === 'all' ? segments : segments.filter((s) => managed.has(s))) : ''}`,
        );
      });
      const change = (verb: 'pause' | 'resume' | 'delete', done: string, act: (id: string) => Promise<{ id: string; bot: string; segment: string }>) =>
        scope.post(`/console/schedules/:id/${verb}`, { config: { permission: 'schedules.manage', audit: `schedule.${verb}` } }, async (request, reply) => {
          expectNoFields(request.body);
          const view = await act(await scopedScheduleRef(request, schedules, 'schedules.manage', parseRequest(IdParam, request.params, 'path').id));
          request.auditTarget = `schedule:${view.id}`;
          request.auditDetails = { scheduleId: view.id, bot: view.bot, segment: view.segment };
          return reply.redirect(consolePath('/console/schedules', { done }), 303);
        });
      change('pause', 'paused', (id) => schedules.setPaused(id, true));
      change('resume', 'resumed', (id) => schedules.setPaused(id, false));
      change('delete', 'deleted', (id) => schedules.remove(id));
    }

    // Bots: every published version, its publisher, channels and whether it may run where.
    get('/console/bots', 'packages.read', async (request, reply) => {
      const list = await deps.releases.list();
      const where = (ok: boolean, why: string | null) => (ok ? 'yes' : `no (${why ?? 'unknown'})`);
      const promote = can(who(request), 'packages.promote');
      const q = request.query as Record<string, string | undefined>;
      return send(
        request,
        reply,
        'Bots',
        html`${doneBanner(q.done)}${table(
          'Published bot versions',
          ['Bot', 'Version', 'Publisher', 'Key revoked', 'Channels', 'Runs in dev', 'Runs in prod', 'Published', ...(promote ? ['Promotion'] : [])],
          list.map(
            (b) => html`<tr>
<td>${b.name}</td><td>${b.version}</td><td>${b.publishedByActor ?? 'not recorded'}</td><td>${b.publisherKeyRevokedAt ? time(b.publisherKeyRevokedAt) : 'no'}</td>
<td>${b.channels.join(', ') || '—'}</td><td>${where(b.runnable.dev, b.notRunnable.dev)}</td><td>${where(b.runnable.prod, b.notRunnable.prod)}</td><td>${time(b.createdAt)}</td>
${promote ? html`<td>${b.channels.includes('prod') || b.publisherKeyRevokedAt ? '' : html`<a href="${consolePath(`/console/bots/${encodeURIComponent(b.name)}/${encodeURIComponent(b.version)}/promote`)}">Review and promote ${b.name} ${b.version}</a>`}</td>` : ''}</tr>`,
          ),
          'No bot has been published yet.',
        )}`,
      );
    });

    // The security team: people and runner identities.
    get('/console/people', 'users.manage', async (request, reply) => {
      const [users, requests] = await Promise.all([identity.users.list(), options.access ? options.access.list('pending') : []]);
      const q = request.query as Record<string, string | undefined>;
      return send(request, reply, 'People', html`${doneBanner(q.done)}${stepUpNote('/console/people')}${peopleTables(users, requests, who(request).actor)}`);
    });
    get('/console/runners', 'runners.manage', async (request, reply) => {
      const runners = await identity.runners.list();
      const revoked = await deps.db.query<{ segment: string }>('SELECT segment FROM bootstrap_runner_revocations');
      const q = request.query as Record<string, string | undefined>;
      return send(
        request,
        reply,
        'Runners',
        html`${doneBanner(q.done)}${stepUpNote('/console/runners')}${runnersTable(runners, segments, new Set(revoked.map((r) => r.segment)))}`,
      );
    });

    consoleActions(scope, deps, { send, who, segments, access: options.access });
    identityPages(scope, deps, { send, who, segments, access: options.access });

    // Auditors: search the audit log.
    get('/console/audit', 'audit.read', async (request, reply) => {
      const q = request.query as Record<string, string | undefined>;
      const filter = parseRequest(AuditFilter, Object.fromEntries(Object.entries(q).filter(([, v]) => v !== '')), 'filters');
      const events = await auditSearch(deps.db, filter);
      return send(
        request,
        reply,
        'Audit',
        html`<form method="get" action="/console/audit" class="filters" role="search">
<label>Actor <input name="actor" value="${filter.actor ?? ''}"></label><label>Action <input name="action" value="${filter.action ?? ''}"></label>
<label>Target <input name="target" value="${filter.target ?? ''}"></label>
<label>From (UTC) <input name="from" type="datetime-local" value="${filter.from ?? ''}"></label><label>Before (UTC) <input name="to" type="datetime-local" value="${filter.to ?? ''}"></label>
<button type="submit">Search</button></form>
<p><a href="/console/audit/verify">Verify the chain</a> · Export the whole log: <a href="/console/audit/export?format=jsonl" download>JSONL</a> · <a href="/console/audit/export?format=cef" download>CEF</a></p>
${table(
  'Audit events, newest first (at most 200)',
  ['Seq', 'When', 'Actor', 'Action', 'Target', 'Outcome'],
  events.map((e) => html`<tr><td>${e.seq}</td><td>${time(e.at)}</td><td>${e.actor}</td><td>${e.action}</td><td>${e.target}</td><td>${e.outcome}</td></tr>`),
  'No audit events match.',
)}`,
      );
    });
    // Verification as a client would do it (the same verifier as `orderly audit verify`), over every retained event and signed head.
    get('/console/audit/verify', 'audit.read', async (request, reply) => {
      const verifier = new AuditVerifier();
      for (let after = 0; ;) {
        const page = await deps.audit.log.list({ afterSeq: after, limit: 5000 });
        for (const record of page) verifier.push(record);
        if (page.length < 5000) break;
        after = page[page.length - 1]!.seq;
      }
      const heads = [];
      for (let after = 0; ;) {
        const page = await deps.audit.heads.list({ afterSeq: after, limit: 5000 });
        heads.push(...page);
        if (page.length < 5000) break;
        after = page[page.length - 1]!.seq;
      }
      const verdict = verifier.finish(heads, createPublicKey(deps.audit.releasePublicKeyPem));
      return send(
        request,
        reply,
        'Audit chain',
        verdict.ok
          ? html`<p class="banner ok" role="status">The chain is intact: ${verdict.events} event(s) from seq ${verdict.firstSeq ?? '—'} to ${verdict.lastSeq ?? '—'}, ${verdict.headsChecked} signed head(s) verified.</p><p><a href="/console/audit">Back to the audit log</a></p>`
          : html`<p class="banner error" role="alert">The chain is broken at seq ${verdict.seq}: ${verdict.reason}.</p><p><a href="/console/audit">Back to the audit log</a></p>`,
      );
    });
    get('/console/audit/export', 'audit.read', async (request, reply) => {
      const { format } = parseRequest(z.object({ format: z.enum(['jsonl', 'cef']) }), request.query, 'query');
      const lines: string[] = [];
      for (let after = 0; ;) {
        const page = await deps.audit.log.list({ afterSeq: after, limit: 5000 });
        for (const record of page) lines.push(format === 'jsonl' ? toJsonLine(record) : toCefLine(record));
        if (page.length < 5000) break;
        after = page[page.length - 1]!.seq;
      }
      return reply
        .type(format === 'jsonl' ? 'application/x-ndjson; charset=utf-8' : 'text/plain; charset=utf-8')
        .header('content-disposition', `attachment; filename="orderly-audit.${format === 'jsonl' ? 'jsonl' : 'cef'}"`)
        .send(`${lines.join('\n')}\n`);
    });
  });
}

function pagesFor(p: Principal): Html[] {
  const links = NAV.filter((n) => n.path !== '/console' && can(p, n.permission)).map((n) => html`<li><a href="${n.path}">${n.label}</a></li>`);
  return links.length ? links : [html`<li class="muted">No console pages beyond this one for your roles; use the CLI.</li>`];
}

export function csrfCookie(token: string, maxHours: number): string {
  return `${CSRF_COOKIE}=${token}; Secure; HttpOnly; SameSite=Strict; Path=/console; Max-Age=${maxHours * 3600}`;
}
function clearCsrfCookie(): string {
  return `${CSRF_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0`;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** This response's CSP nonce (console pages only). */
    cspNonce: string;
  }
}
