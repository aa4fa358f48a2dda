/**
 * Internal types of the dev Vault: one parsed request, one logical response, and the error a
 * handler throws to answer with Vault's `{"errors": [...]}` body.
 */

/** Vault's logical operations. POST/PUT become create or update after the existence check. */
export type Operation = 'create' | 'read' | 'update' | 'delete' | 'list' | 'patch';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** What Vault puts under `auth` when a response carries a token (login, token create, renew). */
export interface AuthBlock {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
  token_type: 'service' | 'batch';
  orphan: boolean;
  mfa_requirement: null;
  num_uses: number;
}

/** A handler's answer before it becomes the HTTP envelope. `null` from a handler means 204. */
export interface LogicalResponse {
  data?: JsonObject | null;
  auth?: AuthBlock | null;
  warnings?: string[];
  /** Vault answers some reads with 404 and a body (a deleted KV version); default 200. */
  status?: number;
}

/** An answer that is not a logical envelope (sys/health, seal-status, unwrap's stored body). */
export interface RawResponse {
  raw: JsonValue | string | undefined;
  status: number;
}

export function isRawResponse(value: LogicalResponse | RawResponse | null): value is RawResponse {
  return value !== null && 'raw' in value;
}

/** Thrown by handlers; the server turns it into `{"errors": errors}` with `status`. */
export class VaultHttpError extends Error {
  readonly status: number;
  readonly errors: string[];

  constructor(status: number, errors: string[] | string) {
    const list = typeof errors === 'string' ? [errors] : errors;
    super(list.join('; ') || `status ${status}`);
    this.name = 'VaultHttpError';
    this.status = status;
    this.errors = list;
  }
}

/** 400 with one message: Vault's `logical.ErrorResponse` + `ErrInvalidRequest`. */
export function badRequest(message: string): VaultHttpError {
  return new VaultHttpError(400, message);
}

/** Vault's own wording for the common failures, kept in one place so tests and server agree. */
export const MESSAGES = {
  permissionDenied: 'permission denied',
  sealed: 'Vault is sealed',
  missingClientToken: 'missing client token',
  invalidWrappingToken: 'wrapping token is not valid or does not exist',
  unsupportedOperation: 'unsupported operation',
  casMismatch: 'check-and-set parameter did not match the current version',
  casRequired: 'check-and-set parameter required for this call',
  tooOld: 'ciphertext or signature version is disallowed by policy (too old)',
  invalidRoleOrSecretId: 'invalid role or secret ID',
} as const;

/** One request after HTTP parsing, as every handler sees it. */
export interface VaultRequest {
  /** Path under /v1/, no leading slash; LIST paths end in `/` like Vault makes them. */
  path: string;
  operation: Operation;
  query: URLSearchParams;
  body: Record<string, unknown>;
  token: string | undefined;
  remoteAddress: string;
  wrapTtlSeconds: number | undefined;
  requestId: string;
  isHead: boolean;
}
