import { FastifyInstance, FastifyRequest } from 'fastify';
import { OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { AuditLog, AuditOutcome } from '../audit/audit';
import { KeyedHasher } from '../audit/keyed-hash';

/**
 * The generic request audit (invariant 5): one event for every state-changing request (POST, PUT,
 * PATCH, DELETE), whatever its outcome, and for every 401/403 on any method. The event names the
 * actor, an action, the target (route parameters, never the body), the outcome, the status and
 * error code, the source address, the request id and the caller's ticket reference.
 *
 * Actions: a route's `config.audit`, else the table below for the routes that exist, else one
 * derived from method and route (`http.post.v1.things.id`), so a future route is covered the day
 * it is added.
 *
 * Routes that write their own domain events are not recorded twice: `self: 'all'` routes
 * (credentials) audit every outcome themselves; `self: 'success'` routes (runner claim and lease,
 * see `audit/runner-events.ts`) audit their successes, the hook their refusals. Denials are always
 * recorded here: they never reach the route.
 *
 * The event is written before the response is sent (`onSend`), so a client that saw the answer
 * can find the event. If it cannot be written the response still goes out unchanged: the change
 * it reports is committed and cannot be rolled back from here, and answering an error would make
 * clients retry a change that happened. The failure is logged at error level with the request id
 * and counted (`auditWriteFailures`), so monitoring sees a gap.
 */

type SelfAudit = 'all' | 'success';

/** Explicit names for the routes that exist; anything else gets a derived name. */
const ROUTE_AUDIT: Readonly<Record<string, { action: string; self?: SelfAudit }>> = {
  'POST /v1/keys': { action: 'key.register' },
  // Named, so the console's revocations (same action) and the API's read as one in the audit log.
  'POST /v1/keys/:id/revoke': { action: 'key.revoke' },
  'DELETE /v1/runners/bootstrap/:segment': { action: 'runner.bootstrap_revoke' },
  'POST /v1/packages': { action: 'package.publish' },
  'POST /v1/runs': { action: 'run.create' },
  'POST /v1/runs/batch': { action: 'run.create_batch' },
  'POST /v1/batches': { action: 'batch.create' },
  'POST /v1/batches/:id/retry': { action: 'batch.retry' },
  'POST /v1/admin/rewrap': { action: 'data_key.rewrap' },
  'PUT /v1/credentials/:bot/:name': { action: 'credential.set', self: 'all' },
  'POST /v1/credentials/:bot/:name/rotate': { action: 'credential.rotate', self: 'all' },
  'POST /v1/credentials/:bot/revoke-runs': { action: 'credential.revoke_runs', self: 'all' },
  'POST /v1/runner/runs/:id/claim': { action: 'run.claim', self: 'success' },
  'POST /v1/runner/runs/:id/lease': { action: 'credential.lease', self: 'success' },
  // A heartbeat every third of an attempt's lease: its successes change nothing worth an event
  // (the claim was audited); a refused renewal (stale token) is recorded.
  'POST /v1/runner/runs/:id/renew': { action: 'run.lease_renew', self: 'success' },
  'POST /v1/runner/runs/:id/screenshots': { action: 'run.screenshot_store' },
  'POST /v1/teams': { action: 'team.create' },
  'POST /v1/teams/:team/members': { action: 'team.member_add' },
  'DELETE /v1/teams/:team/members/:kind/:name': { action: 'team.member_remove' },
  'POST /v1/bots/:name/transfer': { action: 'bot.transfer', self: 'success' },
  'PUT /v1/service-accounts/:id/owner': { action: 'service_account.owner', self: 'success' },
  'POST /v1/service-accounts/:id/disable': { action: 'service_account.disable' },
};

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Ticket references (`CHG-1234`, `INC0012345`, `JIRA/OPS-7`): bounded, no spaces, no control characters. */
export const TICKET_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,63}$/;
export const TICKET_HEADER = 'x-orderly-ticket';

/** `POST /v1/runs/:id/cancel` → `http.post.v1.runs.id.cancel`: deterministic and a valid action name. */
export function derivedAction(method: string, routeUrl: string | undefined): string {
  if (routeUrl === undefined) return `http.${method.toLowerCase()}.unrouted`;
  const parts = routeUrl
    .split('/')
    .map((p) =>
      p
        .replace(/^:/, '')
        .toLowerCase()
        .replace(/[^a-z0-9_]+/g, '_')
        .replace(/^_+|_+$/g, ''),
    )
    .filter(Boolean)
    .map((p) => (/^[a-z]/.test(p) ? p : `p${p}`));
  return ['http', method.toLowerCase(), ...parts].join('.').slice(0, 100).replace(/\.$/, '');
}

/**
 * The target: the route with its parameters filled in, each URL-encoded and cut short, so a
 * hostile parameter (`..`, CR/LF, NUL, megabytes) is recorded harmlessly. Never the body.
 */
export function auditTarget(routeUrl: string | undefined, params: unknown): string {
  if (routeUrl === undefined) return '(no route)';
  const values = (params ?? {}) as Record<string, unknown>;
  const filled = routeUrl.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
    const value = values[name];
    return value === undefined ? `:${name}` : encodeURIComponent(String(value)).slice(0, 120);
  });
  return filled.slice(0, 300);
}

function outcomeOf(status: number): AuditOutcome {
  if (status === 401 || status === 403) return 'denied';
  return status < 400 ? 'success' : 'failure';
}

export interface AuditHookDeps {
  audit: AuditLog;
  hash: KeyedHasher;
  log: Logger;
}

export interface AuditHookStats {
  auditWriteFailures: number;
}

/** Registers the ticket check and the audit hook; call it before any route is added. */
export function registerAuditHook(app: FastifyInstance, deps: AuditHookDeps): AuditHookStats {
  const stats: AuditHookStats = { auditWriteFailures: 0 };

  app.addHook('onRequest', async (request) => {
    const ticket = request.headers[TICKET_HEADER];
    if (ticket === undefined) return;
    if (typeof ticket !== 'string' || !TICKET_PATTERN.test(ticket)) {
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'X-Orderly-Ticket is 1-64 of A-Z a-z 0-9 . _ : # / -, starting with a letter or digit');
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const status = reply.statusCode;
    const denied = status === 401 || status === 403;
    if (!denied && !STATE_CHANGING.has(request.method)) return payload;
    const url = request.routeOptions.url;
    const config = request.routeOptions.config as { audit?: string; auditedByRoute?: SelfAudit } | undefined;
    const known = url === undefined ? undefined : ROUTE_AUDIT[`${request.method} ${url}`];
    const self = config?.auditedByRoute ?? known?.self;
    if (!denied && (self === 'all' || (self === 'success' && status < 400))) return payload;
    const action = config?.audit ?? known?.action ?? derivedAction(request.method, url);
    try {
      await deps.audit.append({
        actor: request.principal?.actor ?? 'anonymous',
        action,
        target: request.auditTarget ?? auditTarget(url, request.params),
        outcome: outcomeOf(status),
        sourceIp: request.ip,
        requestId: request.id,
        details: { method: request.method, status, code: request.errorCode ?? null, ...ticketAndKeys(request, deps.hash), ...request.auditDetails },
      });
    } catch (err) {
      stats.auditWriteFailures++;
      request.log.error({ err: { message: (err as Error).message }, requestId: request.id, action, status }, 'audit event could not be written');
    }
    return payload;
  });
  return stats;
}

/** The ticket (already validated), and the idempotency key as a keyed hash: clients may build it from business data. */
function ticketAndKeys(request: FastifyRequest, hash: KeyedHasher): Record<string, string> {
  const out: Record<string, string> = {};
  const ticket = request.headers[TICKET_HEADER];
  if (typeof ticket === 'string' && TICKET_PATTERN.test(ticket)) out.ticket = ticket;
  const key = request.headers['idempotency-key'];
  if (typeof key === 'string' && key.length > 0) out.idempotencyKey = hash(key.slice(0, 1000));
  return out;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** A route may name its audit target itself (e.g. the attempted username of a failed sign-in). */
    auditTarget?: string;
    /** Extra flat, safe details a route adds to its audit event: ids and codes, never values. */
    auditDetails?: Record<string, string | number | boolean | null>;
  }
  interface FastifyContextConfig {
    /** The audit action of this route (`run.cancel`); without it the hook derives one. */
    audit?: string;
    /** The route writes its own audit events: for every outcome, or for successes only. */
    auditedByRoute?: 'all' | 'success';
  }
}
