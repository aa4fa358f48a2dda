import { z } from 'zod';
import { OrderlyError } from '@orderly/shared';
import { parseRequest } from '../http/errors';

const NoFields = z.strictObject({});

/**
 * The body of a console form that sends nothing. An absent body is none; any field, and a null
 * body, is refused as on every route (a null body is not an empty form).
 */
export function expectNoFields(body: unknown): void {
  parseRequest(NoFields, body === undefined ? {} : body);
}

/** A console form's fields, all text; an absent body has none, a null or non-object body is refused. */
export function formFields(body: unknown): Record<string, string> {
  const fields = body === undefined ? {} : body;
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'a form body is expected');
  for (const v of Object.values(fields)) if (typeof v !== 'string') throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'form fields are text');
  return fields as Record<string, string>;
}
