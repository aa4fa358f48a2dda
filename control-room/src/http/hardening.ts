import type { Socket } from 'node:net';
import { FastifyInstance, FastifyServerOptions, RouteOptions } from 'fastify';
import { OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { Permission, PERMISSIONS } from '../access/permissions';
import { sendError } from './errors';

/**
 * Hostile-input defences that apply to every route, present and future:
 *
 * - a small body limit (64 KiB) unless the route is one of the few that carry large payloads
 *   (package uploads, screenshots, run batches), so a client cannot make the server buffer
 *   megabytes of JSON on any route it can reach;
 * - routes that take no body refuse one (an unknown field is an error, never silently ignored);
 * - requests Node's HTTP parser refuses (CR/LF or control characters in headers, oversized
 *   headers, broken framing) and URLs the router cannot decode get our error format with a stable
 *   code instead of Node's or Fastify's own text.
 */

export const DEFAULT_BODY_LIMIT = 64 * 1024;

/** Routes that carry large bodies, and how large: `maxPackageBytes` scales the package upload. */
function largeBodyLimit(method: string, url: string, maxPackageBytes: number): number | undefined {
  switch (`${method} ${url}`) {
    // Base64 packages are 4/3 of their size, plus the envelope.
    case 'POST /v1/packages':
      return Math.ceil(maxPackageBytes * 1.4) + 64 * 1024;
    // ScreenshotUpload allows 20 MB of base64.
    case 'POST /v1/runner/runs/:id/screenshots':
      return 21 * 1024 * 1024;
    // A step result may be 64 KiB of JSON; escaped inside the request it can grow.
    case 'POST /v1/runner/runs/:id/steps/complete':
      return 256 * 1024;
    // Up to 1,000 runs with their inputs.
    case 'POST /v1/runs/batch':
      return 8 * 1024 * 1024;
    // Up to 5,000 work-queue items, as JSON or a CSV/JSONL file's text.
    case 'POST /v1/batches':
      return 16 * 1024 * 1024;
    default:
      return undefined;
  }
}

/** State-changing routes that take no body: anything but an empty body or `{}` is refused. */
const NO_BODY_ROUTES = new Set([
  'POST /v1/admin/rewrap',
  'POST /v1/credentials/:bot/revoke-runs',
  'POST /v1/keys/:id/revoke',
  'POST /v1/runs/:id/cancel',
  'DELETE /v1/session',
  'DELETE /v1/tokens/:id',
  'POST /v1/users/:id/disable',
  'POST /v1/users/:id/unlock',
  'DELETE /v1/runners/:id',
  'POST /v1/schedules/:id/pause',
  'POST /v1/schedules/:id/resume',
  'DELETE /v1/schedules/:id',
  'DELETE /v1/teams/:team/members/:kind/:name',
]);

export interface RegisteredRoute {
  method: string;
  url: string;
  permission: Permission;
  stepUp: boolean;
  bodyLimit: number;
}

const registries = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route registered on `app` (HEAD twins of GET routes left out), for tests that must cover them all. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return registries.get(app) ?? [];
}

/**
 * Call before any route is added: the route registry, body limits and no-body routes. A route
 * that declares no permission (or an unknown one) cannot be registered: nobody adds a route
 * without saying who may call it.
 */
export function hardenRoutes(app: FastifyInstance, options: { maxPackageBytes: number }): void {
  const registry: RegisteredRoute[] = [];
  registries.set(app, registry);
  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config as { permission?: Permission; stepUp?: boolean } | undefined;
    const methods = ([] as string[]).concat(route.method);
    const permission = config?.permission;
    if (!permission || !(PERMISSIONS as readonly string[]).includes(permission)) {
      throw new OrderlyError('ORDERLY_E_INTERNAL', `route ${methods.join(',')} ${route.url} declares no valid permission`);
    }
    for (const method of methods) {
      const large = largeBodyLimit(method, route.url, options.maxPackageBytes);
      if (route.bodyLimit === undefined) route.bodyLimit = large ?? DEFAULT_BODY_LIMIT;
      if (method === 'HEAD') continue;
      registry.push({ method, url: route.url, permission, stepUp: config.stepUp === true, bodyLimit: route.bodyLimit });
    }
  });
  app.addHook('preValidation', async (request) => {
    if (!NO_BODY_ROUTES.has(`${request.method} ${request.routeOptions.url}`)) return;
    const body = request.body;
    const empty = body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0);
    if (!empty) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'this request takes no body');
  });
}

function errorJson(message: string): string {
  return JSON.stringify({ error: new OrderlyError('ORDERLY_E_BAD_REQUEST', message).toJSON(), requestId: null });
}

/**
 * Server options for requests that never reach a route. Node's parser refuses CR/LF and other
 * control characters in header values (header injection) before Fastify sees the request: the
 * answer is a fixed 400 in our format, never an echo of the input.
 */
export function hardenedServerOptions(log: Logger): Pick<FastifyServerOptions, 'clientErrorHandler' | 'frameworkErrors'> {
  return {
    // Undecodable URLs and overlong parameters: Fastify's default answers echo the path.
    frameworkErrors: (err, request, reply) => {
      sendError(err, request, reply);
    },
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
        socket.destroy();
        return;
      }
      log.warn({ code: err.code }, 'malformed HTTP request refused');
      const body = errorJson(err.code === 'HPE_HEADER_OVERFLOW' ? 'request headers are too large' : 'malformed HTTP request');
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  };
}
