import { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ErrorBody, isOrderlyError, OrderlyError } from '@orderly/shared';

/** Parses a request part with zod; failures become a 400 naming the fields, never their values. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new OrderlyError('ORDERLY_E_BAD_REQUEST', `invalid ${what}: ${problems.slice(0, 10).join('; ')}`, { problems: problems.slice(0, 50) });
  }
  return result.data;
}

/** Connection failures of PostgreSQL (`pg`) and Redis (ioredis): the request may succeed later. */
function isDependencyOutage(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '08006', '08001'].includes(code)) return true;
  const message = err instanceof Error ? err.message : '';
  return /Connection (is closed|terminated)|connect ECONNREFUSED|Stream isn't writeable/.test(message);
}

/** Maps any error to our wire format. Unknown errors are logged in full and answered as 500 without internals. */
export function toErrorBody(err: unknown, request: FastifyRequest): { status: number; body: ErrorBody } {
  if (isOrderlyError(err)) return { status: err.status, body: (err as OrderlyError).toJSON() };
  const fastifyError = err as Partial<FastifyError>;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, body: new OrderlyError('ORDERLY_E_BODY_TOO_LARGE', 'request body is over the size limit').toJSON() };
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    // Fastify's own 4xx (malformed JSON, bad content type): the message is safe, it names no value.
    return {
      status: fastifyError.statusCode,
      body: new OrderlyError('ORDERLY_E_BAD_REQUEST', fastifyError.code ? `${fastifyError.code}: request rejected` : 'request rejected').toJSON(),
    };
  }
  if (isDependencyOutage(err)) {
    request.log.warn({ code: (err as { code?: string }).code }, 'dependency unavailable');
    return { status: 503, body: new OrderlyError('ORDERLY_E_DEPENDENCY_UNAVAILABLE', 'the database or Redis did not answer; retry later').toJSON() };
  }
  request.log.error({ err }, 'unhandled error');
  return { status: 500, body: new OrderlyError('ORDERLY_E_INTERNAL', `internal error; request id ${request.id}`).toJSON() };
}

export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = toErrorBody(err, request);
  // The audit hook records the code of a refused request (never its message, which may echo input).
  request.errorCode = body.code;
  return reply.code(status).send({ error: body, requestId: request.id });
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The error code this request was answered with, if any (set by `sendError`). */
    errorCode?: string;
  }
}
