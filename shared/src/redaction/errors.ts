import type { ErrorBody, SafeDetails } from '../errors';
import type { Redactor } from './redactor';

/**
 * Errors leave a run in reports, HTTP bodies and log lines; their messages and stacks quote
 * whatever the failing code had in hand (a URL with a member id, a form value). These helpers
 * return copies with every string redacted, through `cause` chains and AggregateError lists.
 * A part whose redaction fails is replaced by a constant, never kept.
 */

export const REDACTION_FAILED = '[REDACTION FAILED]';
const MAX_DEPTH = 8;

/** A plain, serializable copy of an error, safe to log, report or store. */
export interface RedactedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  details?: SafeDetails;
  cause?: RedactedError;
  errors?: RedactedError[];
}

type TextRedactor = Pick<Redactor, 'redact'>;

function safely(redactor: TextRedactor, text: string): string {
  try {
    const out = redactor.redact(text);
    return typeof out === 'string' ? out : REDACTION_FAILED;
  } catch {
    return REDACTION_FAILED;
  }
}

function redactDetails(redactor: TextRedactor, details: unknown): SafeDetails | undefined {
  if (details === null || typeof details !== 'object') return undefined;
  const out: SafeDetails = {};
  for (const [k, v] of Object.entries(details as Record<string, unknown>)) {
    const key = safely(redactor, k);
    if (typeof v === 'string') out[key] = safely(redactor, v);
    else if (Array.isArray(v)) out[key] = v.map((x) => safely(redactor, String(x)));
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
      const text = String(v);
      const red = safely(redactor, text);
      out[key] = red === text ? v : red;
    }
  }
  return out;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Redacts `err` (an Error or anything thrown) into a plain object. */
export function redactError(err: unknown, redactor: TextRedactor): RedactedError {
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): RedactedError => {
    if (!(value instanceof Error)) {
      let text: string;
      try {
        text = describe(value);
      } catch {
        text = REDACTION_FAILED;
      }
      return { name: 'NonError', message: safely(redactor, text) };
    }
    seen.add(value);
    const out: RedactedError = { name: safely(redactor, value.name), message: safely(redactor, value.message) };
    if (typeof value.stack === 'string') out.stack = safely(redactor, value.stack);
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string') out.code = safely(redactor, code);
    const details = redactDetails(redactor, (value as { details?: unknown }).details);
    if (details !== undefined) out.details = details;
    if (depth < MAX_DEPTH) {
      const cause = (value as { cause?: unknown }).cause;
      if (cause !== undefined && !seen.has(cause)) out.cause = visit(cause, depth + 1);
      if (value instanceof AggregateError && Array.isArray(value.errors)) {
        out.errors = value.errors.filter((e) => !seen.has(e)).map((e) => visit(e, depth + 1));
      }
    }
    return out;
  };
  return visit(err, 0);
}

/** The wire form of an error (reports, HTTP bodies, CLI `--json`) with message and details redacted. */
export function redactErrorBody(body: ErrorBody, redactor: TextRedactor): ErrorBody {
  return { ...body, message: safely(redactor, body.message), details: redactDetails(redactor, body.details) ?? {} };
}
