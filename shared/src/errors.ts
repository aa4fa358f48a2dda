/**
 * One registry of every error Orderly reports. Callers branch on `code`, never on messages or
 * `instanceof` across packages. Details are safe to log: they never carry secrets or PHI.
 */
export const ERROR_CODES = {
  ORDERLY_E_CONFIG_INVALID: { status: 500, retryable: false, doc: 'A configuration variable is missing or invalid; the process exits.' },
  ORDERLY_E_BAD_REQUEST: { status: 400, retryable: false, doc: 'The request body, query or parameters failed validation.' },
  ORDERLY_E_BODY_TOO_LARGE: { status: 413, retryable: false, doc: 'The request body or package upload is over the size limit.' },
  ORDERLY_E_UNAUTHENTICATED: { status: 401, retryable: false, doc: 'No valid credential was presented.' },
  ORDERLY_E_FORBIDDEN: { status: 403, retryable: false, doc: 'The caller may not perform this action.' },
  ORDERLY_E_NOT_FOUND: { status: 404, retryable: false, doc: 'The named resource does not exist.' },
  ORDERLY_E_MANIFEST_INVALID: { status: 400, retryable: false, doc: 'bot.json is missing, malformed or fails the manifest schema.' },
  ORDERLY_E_PACKAGE_INVALID: { status: 400, retryable: false, doc: 'The package archive is malformed: bad gzip/tar, `..` or absolute paths, links or special files.' },
  ORDERLY_E_PACKAGE_TOO_LARGE: { status: 413, retryable: false, doc: 'The package archive, or its unpacked content, is over the size limit.' },
  ORDERLY_E_PACKAGE_DIGEST_MISMATCH: { status: 400, retryable: false, doc: 'The package bytes do not match the digest that was signed or requested.' },
  ORDERLY_E_PACKAGE_VERSION_CONFLICT: { status: 409, retryable: false, doc: 'This bot version was already published with different bytes.' },
  ORDERLY_E_SIGNATURE_INVALID: { status: 400, retryable: false, doc: 'A DSSE envelope or job signature does not verify.' },
  ORDERLY_E_KEY_UNKNOWN: { status: 400, retryable: false, doc: 'The signing key is not registered (or is revoked).' },
  ORDERLY_E_KEY_INVALID: { status: 400, retryable: false, doc: 'A key file or PEM is not a valid Ed25519 key.' },
  ORDERLY_E_KEY_CONFLICT: { status: 409, retryable: false, doc: 'A different key is already registered under this name.' },
  ORDERLY_E_SEGMENT_UNKNOWN: { status: 400, retryable: false, doc: 'The segment is not configured, or the bot may not run in it.' },
  ORDERLY_E_BOT_UNKNOWN: { status: 404, retryable: false, doc: 'No published package has this bot name (and version).' },
  ORDERLY_E_INPUT_PATTERN_UNSUPPORTED: { status: 400, retryable: false, doc: "An input field's `pattern` in bot.json is not a regular expression the linear-time matcher (RE2 syntax: no backreferences or lookaround, repeat counts up to 1000) can compile; refused at publish." },
  ORDERLY_E_INPUT_INVALID: { status: 400, retryable: false, doc: "The run input fails the bot's input schema." },
  ORDERLY_E_IDEMPOTENCY_KEY_INVALID: { status: 400, retryable: false, doc: 'Idempotency keys are 1-200 characters of letters, digits, `.`, `_` and `-`.' },
  ORDERLY_E_IDEMPOTENCY_KEY_REUSED: { status: 409, retryable: false, doc: 'The idempotency key belongs to a run of another bot or with another input.' },
  ORDERLY_E_RUN_NOT_CLAIMABLE: { status: 409, retryable: false, doc: 'The run is not in a state this runner may claim.' },
  ORDERLY_E_JOB_FORGED: { status: 400, retryable: false, doc: 'A job on a run queue is not a valid control-room-signed envelope; it is refused and never run.' },
  ORDERLY_E_REPORT_FORGED: { status: 400, retryable: false, doc: "A report on `orderly.reports` was not signed by a runner credential the control room knows, or came from a runner of another segment than the run's; it is recorded in `job_refusals` and never moves a run." },
  ORDERLY_E_JOB_EXPIRED: { status: 400, retryable: false, doc: 'The job envelope is past its not-after time.' },
  ORDERLY_E_JOB_WRONG_SEGMENT: { status: 400, retryable: false, doc: "The job envelope names another segment than the runner's." },
  ORDERLY_E_BOT_FAILED: { status: 500, retryable: true, doc: 'The bot threw a system error (timeout, navigation, target error); retried.' },
  ORDERLY_E_BOT_BUSINESS: { status: 422, retryable: false, doc: 'The bot reported that the work itself cannot succeed; never retried.' },
  ORDERLY_E_BOT_TIMEOUT: { status: 504, retryable: true, doc: "The bot ran past its manifest's timeout and was aborted." },
  ORDERLY_E_BOT_HOST_CRASHED: { status: 500, retryable: true, doc: 'The bot host process or its browser died during the run.' },
  ORDERLY_E_CONTROL_ROOM_UNAVAILABLE: { status: 503, retryable: true, doc: 'The runner could not reach the control room.' },
  ORDERLY_E_DEPENDENCY_UNAVAILABLE: { status: 503, retryable: true, doc: 'Redis or the database did not answer.' },
  ORDERLY_E_VAULT_SEALED: { status: 503, retryable: true, doc: 'Vault answered that it is sealed (503).' },
  ORDERLY_E_VAULT_UNAVAILABLE: { status: 503, retryable: true, doc: 'Vault is unreachable, on standby (429) or failing (5xx) after retries within the budget.' },
  ORDERLY_E_VAULT_PERMISSION_DENIED: { status: 403, retryable: false, doc: 'Vault refused the path (403); the message names the path, never a value.' },
  ORDERLY_E_VAULT_WRAP_INVALID: { status: 400, retryable: false, doc: 'A response-wrapping token was already used, expired, or was not created for the expected path: a security event.' },
  ORDERLY_E_VAULT_ERROR: { status: 502, retryable: false, doc: 'Vault returned an unexpected error or a response that failed validation.' },
  ORDERLY_E_VAULT_NOT_CONFIGURED: { status: 400, retryable: false, doc: 'The bot declares credentials but this control room or runner has no Vault (VAULT_ADDR).' },
  ORDERLY_E_CREDENTIAL_CAS_CONFLICT: { status: 409, retryable: false, doc: 'A concurrent rotation wrote the credential first (check-and-set); read and rotate again.' },
  ORDERLY_E_REDACTION_VALUE_TOO_SHORT: { status: 400, retryable: false, doc: 'A declared PHI value or secret is too short to mask safely; it is refused rather than masking every match.' },
  ORDERLY_E_REDACTION_INPUT_INVALID: { status: 400, retryable: false, doc: 'A redaction eval/scan file line is not valid JSON of the documented shape.' },
  ORDERLY_E_INTERNAL: { status: 500, retryable: false, doc: 'An unexpected error; details are in the server log under the request id.' },
  ORDERLY_E_ATTEMPT_LOST: { status: 500, retryable: true, doc: "An attempt's runner died or stalled before it reported; the run is retried after its backoff, or dead-lettered once its attempts are used up." },
  ORDERLY_E_ATTEMPT_STALE: { status: 409, retryable: false, doc: "A runner spoke for an attempt that is no longer the run's current one (a newer attempt claimed the run)." },
  ORDERLY_E_STEP_UNCERTAIN: { status: 409, retryable: false, doc: 'A step started on an earlier attempt never recorded done, and the bot gave no `onUncertain` policy: never re-run silently; the run is dead-lettered for an operator.' },
  ORDERLY_E_STEP_INVALID: { status: 400, retryable: false, doc: 'A step name is not 1-100 letters, digits, `.`, `_`, `:` or `-`, a step name is used twice in one attempt, or a step result is not JSON or is over 64 KiB.' },
  ORDERLY_E_RELEASE_MISSING: { status: 409, retryable: false, doc: 'The package has no release attestation for the channel of the segment (production segments need a promotion to `prod`); it is not run.' },
  ORDERLY_E_RELEASE_INVALID: { status: 400, retryable: false, doc: 'A release attestation does not verify: not signed by the release key, tampered, or for another digest.' },
  ORDERLY_E_RELEASE_EXPIRED: { status: 409, retryable: false, doc: 'The release attestation for the channel has expired; promote the package again.' },
  ORDERLY_E_KEY_REVOKED: { status: 409, retryable: false, doc: "The package's publisher key is revoked: it is not run or promoted anywhere." },
  ORDERLY_E_SELF_APPROVAL: { status: 403, retryable: false, doc: 'Separation of duties: the publisher of a package cannot promote it.' },
  ORDERLY_E_CLIENT_CERT_REQUIRED: { status: 401, retryable: false, doc: 'Runner routes need a TLS client certificate issued by the configured client CA.' },
  ORDERLY_E_RUN_NOT_DEAD_LETTERED: { status: 409, retryable: false, doc: 'The run is not (or no longer) dead-lettered: another operator may have requeued or discarded it first.' },
  ORDERLY_E_RUN_NOT_CANCELLABLE: { status: 409, retryable: false, doc: 'The run has already finished (succeeded, failed, dead-lettered, cancelled or discarded); only waiting or active runs can be cancelled.' },
  ORDERLY_E_RUN_CANCELLED: { status: 409, retryable: false, doc: 'An operator cancelled the run; its bot was aborted and the job is not retried.' },
  ORDERLY_E_JOB_LOCKED: { status: 409, retryable: true, doc: "A runner still holds the run's previous job; try again in a few seconds." },
  ORDERLY_E_CONFIRMATION_REQUIRED: { status: 400, retryable: false, doc: 'A bulk change needs explicit confirmation (`--yes`); nothing was changed.' },
  ORDERLY_E_SIGN_IN_FAILED: { status: 401, retryable: false, doc: 'The username, password, second factor or enrolment secret is wrong; the same answer whether or not the user exists.' },
  ORDERLY_E_SIGN_IN_LOCKED: { status: 429, retryable: true, doc: 'Too many failed sign-ins for this username: locked with exponential backoff (details.retryAfterSeconds).' },
  ORDERLY_E_SESSION_EXPIRED: { status: 401, retryable: false, doc: 'The console session passed its idle timeout or absolute limit, or was signed out; sign in again.' },
  ORDERLY_E_CSRF_TOKEN_INVALID: { status: 403, retryable: false, doc: 'A cookie-authenticated state-changing request lacks the session\'s X-CSRF-Token header.' },
  ORDERLY_E_STEP_UP_REQUIRED: { status: 403, retryable: false, doc: 'The action needs a fresh second factor: `POST /v1/session/step-up`, or an `X-Orderly-TOTP` header with an API token.' },
  ORDERLY_E_IDENTITY_CONFLICT: { status: 409, retryable: false, doc: 'A user, service account or runner identity with this name already exists.' },
  ORDERLY_E_SCHEDULE_INVALID: { status: 400, retryable: false, doc: 'A schedule needs exactly one of a valid cron pattern (UTC) or an interval in seconds, no more often than `ORDERLY_SCHEDULE_MIN_INTERVAL_SECONDS`, and a name of 1-64 lower-case letters, digits, `.`, `_` and `-` that is not a UUID.' },
  ORDERLY_E_SCHEDULE_CONFLICT: { status: 409, retryable: false, doc: 'A schedule with this name already exists.' },
} as const satisfies Record<string, { status: number; retryable: boolean; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
export type SafeDetails = Record<string, string | number | boolean | null | readonly string[]>;

/** The one error base: stable code, retryability, HTTP status and details that are safe to log. */
export class OrderlyError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly status: number;
  readonly details: SafeDetails;

  constructor(code: ErrorCode, message: string, details: SafeDetails = {}, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OrderlyError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryable = options?.retryable ?? ERROR_CODES[code].retryable;
    this.details = details;
  }

  /** The wire form used in HTTP error bodies, reports and CLI `--json` output. */
  toJSON(): ErrorBody {
    return { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  details: SafeDetails;
}

/** True when `value` carries one of our codes; works across package copies, unlike instanceof. */
export function isOrderlyError(value: unknown): value is OrderlyError {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'string'
    && Object.hasOwn(ERROR_CODES, (value as { code: string }).code) && typeof (value as { retryable?: unknown }).retryable === 'boolean';
}

export function hasCode(value: unknown, code: ErrorCode): boolean {
  return isOrderlyError(value) && value.code === code;
}
