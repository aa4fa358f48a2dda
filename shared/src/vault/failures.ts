import { OrderlyError, type SafeDetails } from '../errors';

/**
 * Turns what node-vault throws into one of our codes. node-vault rejects with an
 * ApiResponseError (`response.statusCode`, `response.body`) for any status but 200/204, and
 * with the raw axios error for network failures. The axios error carries the request config,
 * headers included, so it is never attached as a `cause`: a logger serialising the cause would
 * print the X-Vault-Token.
 */

/**
 * `unprocessed`: Vault certainly did not act (connection refused, 429, 503 standby), safe to
 * retry anything. `ambiguous`: it may have acted (timeout, reset, 500), retried only for
 * idempotent operations. `never`: an answer, not an outage.
 */
export type RetryClass = 'unprocessed' | 'ambiguous' | 'never';

export type FailureKind = 'sealed' | 'unavailable' | 'denied' | 'wrap-invalid' | 'cas-conflict' | 'login-rejected' | 'not-found' | 'error';

export interface Failure {
  kind: FailureKind;
  retry: RetryClass;
  /** HTTP status when Vault answered. */
  status?: number;
  /** Network error code (ECONNREFUSED, ECONNABORTED, ...) when it did not. */
  network?: string;
  /** Vault's error strings, sanitised. */
  vaultErrors: string[];
  /** The answer body, for the few callers that read one from an error status (KV 404). */
  body?: unknown;
}

export interface OperationInfo {
  /** Short operation name for messages: "kv read", "approle login". */
  operation: string;
  /** The Vault path, never a value. */
  path: string;
}

const UNPROCESSED_NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const AMBIGUOUS_NETWORK = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_CANCELED',
  'ESOCKETTIMEDOUT',
  'ERR_BAD_RESPONSE',
]);

function apiResponse(error: unknown): { statusCode: number; body: unknown } | undefined {
  if (typeof error !== 'object' || error === null || !('response' in error)) return undefined;
  const response = (error as { response: unknown }).response;
  if (typeof response !== 'object' || response === null) return undefined;
  const statusCode = (response as { statusCode?: unknown }).statusCode;
  return typeof statusCode === 'number' ? { statusCode, body: (response as { body?: unknown }).body } : undefined;
}

function networkCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Vault's messages rarely echo input, but a token, UUID (role/secret ids) or a long base64 run
 * in one must never reach a log: such runs are replaced before the text is kept.
 */
export function sanitizeVaultMessage(message: string): string {
  return message
    .replace(/\bhv[sbr]\.[A-Za-z0-9_-]+/g, '[redacted]')
    .replace(/\bs\.[A-Za-z0-9]{20,}/g, '[redacted]')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '[redacted]')
    .replace(/[A-Za-z0-9+/_-]{24,}={0,2}/g, '[redacted]')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}

function vaultErrors(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  return errors
    .filter((e): e is string => typeof e === 'string')
    .slice(0, 5)
    .map(sanitizeVaultMessage);
}

/** Classifies one failed attempt. */
export function classifyFailure(error: unknown): Failure {
  const response = apiResponse(error);
  if (response !== undefined) {
    const { statusCode: status, body } = response;
    const errors = vaultErrors(body);
    const text = errors.join('\n');
    if (status === 503 && /Vault is sealed/.test(text)) return { kind: 'sealed', retry: 'never', status, vaultErrors: errors };
    if (status === 429 || status === 412 || status === 503) return { kind: 'unavailable', retry: 'unprocessed', status, vaultErrors: errors };
    if (status >= 500) return { kind: 'unavailable', retry: 'ambiguous', status, vaultErrors: errors };
    if (status === 403) return { kind: 'denied', retry: 'never', status, vaultErrors: errors };
    if (status === 400 && /wrapping token is not valid or does not exist/.test(text))
      return { kind: 'wrap-invalid', retry: 'never', status, vaultErrors: errors };
    if (status === 400 && /check-and-set parameter did not match the current version/.test(text))
      return { kind: 'cas-conflict', retry: 'never', status, vaultErrors: errors };
    if (status === 400 && /invalid role or secret ID|invalid secret id|unauthorized through CIDR restrictions/i.test(text)) {
      return { kind: 'login-rejected', retry: 'never', status, vaultErrors: errors };
    }
    if (status === 404) return { kind: 'not-found', retry: 'never', status, vaultErrors: errors, body };
    return { kind: 'error', retry: 'never', status, vaultErrors: errors };
  }
  const code = networkCode(error);
  if (code !== undefined && UNPROCESSED_NETWORK.has(code)) return { kind: 'unavailable', retry: 'unprocessed', network: code, vaultErrors: [] };
  if (code !== undefined && AMBIGUOUS_NETWORK.has(code)) return { kind: 'unavailable', retry: 'ambiguous', network: code, vaultErrors: [] };
  return { kind: 'error', retry: 'never', ...(code === undefined ? {} : { network: code }), vaultErrors: [] };
}

function reasonOf(failure: Failure): string {
  if (failure.status !== undefined) return `status ${failure.status}`;
  if (failure.network === 'ECONNABORTED' || failure.network === 'ETIMEDOUT') return 'timeout';
  return failure.network ?? 'unexpected client error';
}

/** The OrderlyError for a failure that will not be retried (any more). */
export function toOrderlyError(failure: Failure, info: OperationInfo, attempts: number, note?: string): OrderlyError {
  const details: SafeDetails = { path: info.path, operation: info.operation, attempts };
  if (failure.status !== undefined) details.vaultStatus = failure.status;
  if (failure.network !== undefined) details.network = failure.network;
  if (failure.vaultErrors.length > 0) details.vaultErrors = failure.vaultErrors;
  const where = `${info.operation} on ${info.path}`;
  switch (failure.kind) {
    case 'sealed':
      return new OrderlyError('ORDERLY_E_VAULT_SEALED', `Vault is sealed (${where})`, details);
    case 'unavailable':
      return new OrderlyError(
        'ORDERLY_E_VAULT_UNAVAILABLE',
        `Vault did not serve ${where} after ${attempts} attempt(s): ${reasonOf(failure)}${note === undefined ? '' : `; ${note}`}`,
        details,
      );
    case 'denied':
      return new OrderlyError('ORDERLY_E_VAULT_PERMISSION_DENIED', `Vault denied ${where}`, details);
    case 'login-rejected':
      return new OrderlyError(
        'ORDERLY_E_VAULT_PERMISSION_DENIED',
        `Vault rejected the AppRole credentials (${where}): unknown role, or a used, expired or address-bound secret ID`,
        details,
      );
    case 'wrap-invalid':
      return new OrderlyError(
        'ORDERLY_E_VAULT_WRAP_INVALID',
        `the response-wrapping token is not valid (${where}): already unwrapped, expired or never issued`,
        details,
      );
    case 'cas-conflict':
      return new OrderlyError('ORDERLY_E_CREDENTIAL_CAS_CONFLICT', `check-and-set conflict on ${info.path}: another writer changed it first`, details);
    case 'not-found':
      return new OrderlyError('ORDERLY_E_VAULT_ERROR', `Vault found nothing for ${where}`, details);
    case 'error':
      return new OrderlyError('ORDERLY_E_VAULT_ERROR', `Vault refused ${where} (${reasonOf(failure)})`, details);
  }
}
