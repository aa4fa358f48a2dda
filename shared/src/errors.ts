/**
 * One registry of every error Orderly reports. Callers branch on `code`, never on messages or
 * `instanceof` across packages. Details are safe to log: they never carry secrets or PHI.
 */
export const ERROR_CODES = {
  ORDERLY_E_CONFIG_INVALID: { status: 500, retryable: false, doc: 'A configuration variable is missing or invalid; the process exits.' },
  ORDERLY_E_BACKUP_INVALID: { status: 400, retryable: false, doc: 'The file is not an Orderly backup archive, or the backup key is not 32 bytes.' },
  ORDERLY_E_BACKUP_TAMPERED: {
    status: 422,
    retryable: false,
    doc: 'The backup archive does not authenticate or does not match its sha256 manifest: it was changed or truncated. Nothing was restored.',
  },
  ORDERLY_E_BACKUP_WRONG_KEY: {
    status: 422,
    retryable: false,
    doc: 'The backup archive was sealed with another backup key (its key id is named). Nothing was restored.',
  },
  ORDERLY_E_BACKUP_TARGET_NOT_EMPTY: { status: 409, retryable: false, doc: 'A restore goes only into an empty database; the target has tables.' },
  ORDERLY_E_BACKUP_FAILED: { status: 500, retryable: false, doc: 'pg_dump or pg_restore failed, or the restored database differs from the manifest.' },
  ORDERLY_E_BAD_REQUEST: { status: 400, retryable: false, doc: 'The request body, query or parameters failed validation.' },
  ORDERLY_E_BODY_TOO_LARGE: { status: 413, retryable: false, doc: 'The request body or package upload is over the size limit.' },
  ORDERLY_E_UNAUTHENTICATED: { status: 401, retryable: false, doc: 'No valid credential was presented.' },
  ORDERLY_E_FORBIDDEN: { status: 403, retryable: false, doc: 'The caller may not perform this action.' },
  ORDERLY_E_NOT_FOUND: { status: 404, retryable: false, doc: 'The named resource does not exist.' },
  ORDERLY_E_MANIFEST_INVALID: { status: 400, retryable: false, doc: 'bot.json is missing, malformed or fails the manifest schema.' },
  ORDERLY_E_CONTACTS_REQUIRED: {
    status: 400,
    retryable: false,
    doc: 'bot.json names a production segment (`ORDERLY_PROD_SEGMENTS`) but no `contacts` (owner, data steward, security contact); refused at publish.',
  },
  ORDERLY_E_PACKAGE_INVALID: {
    status: 400,
    retryable: false,
    doc: 'The package archive is malformed: bad gzip/tar, `..` or absolute paths, links or special files.',
  },
  ORDERLY_E_PACKAGE_TOO_LARGE: { status: 413, retryable: false, doc: 'The package archive, or its unpacked content, is over the size limit.' },
  ORDERLY_E_PACKAGE_DIGEST_MISMATCH: { status: 400, retryable: false, doc: 'The package bytes do not match the digest that was signed or requested.' },
  ORDERLY_E_PACKAGE_VERSION_CONFLICT: { status: 409, retryable: false, doc: 'This bot version was already published with different bytes.' },
  ORDERLY_E_SIGNATURE_INVALID: { status: 400, retryable: false, doc: 'A DSSE envelope or job signature does not verify.' },
  ORDERLY_E_KEY_UNKNOWN: { status: 400, retryable: false, doc: 'The signing key is not registered (or is revoked).' },
  ORDERLY_E_KEY_INVALID: { status: 400, retryable: false, doc: 'A key file or PEM is not a valid Ed25519 key.' },
  ORDERLY_E_KEY_CONFLICT: { status: 409, retryable: false, doc: 'A different key is already registered under this name.' },
  ORDERLY_E_KEYS_MISMATCH: {
    status: 500,
    retryable: false,
    doc: "This control room's key material (data key, at-rest sealing, job signer, report sealing key, release key) differs from what the database was initialised with; it refuses to start. The message names which keys differ, never their values.",
  },
  ORDERLY_E_SEGMENT_UNKNOWN: { status: 400, retryable: false, doc: 'The segment is not configured, or the bot may not run in it.' },
  ORDERLY_E_BOT_UNKNOWN: { status: 404, retryable: false, doc: 'No published package has this bot name (and version).' },
  ORDERLY_E_INPUT_PATTERN_UNSUPPORTED: {
    status: 400,
    retryable: false,
    doc: "An input field's `pattern` in bot.json is not a regular expression the linear-time matcher (RE2 syntax: no backreferences or lookaround, repeat counts up to 1000) can compile; refused at publish.",
  },
  ORDERLY_E_INPUT_INVALID: { status: 400, retryable: false, doc: "The run input fails the bot's input schema." },
  ORDERLY_E_IDEMPOTENCY_KEY_INVALID: { status: 400, retryable: false, doc: 'Idempotency keys are 1-200 characters of letters, digits, `.`, `_` and `-`.' },
  ORDERLY_E_BATCH_ITEMS_INVALID: {
    status: 400,
    retryable: false,
    doc: 'A batch items file is not valid CSV (header, quotes, field counts) or JSONL (one JSON object a line), or holds no items; the line is named. Nothing was created.',
  },
  ORDERLY_E_BATCH_TOO_MANY_ITEMS: { status: 400, retryable: false, doc: 'A batch holds at most 5,000 items. Nothing was created.' },
  ORDERLY_E_BATCH_KEY_MISSING: {
    status: 400,
    retryable: false,
    doc: 'The batch key column is not in the file, or an item has no value in it. Nothing was created.',
  },
  ORDERLY_E_BATCH_KEY_DUPLICATE: {
    status: 400,
    retryable: false,
    doc: 'Two items of a batch file have the same key (or, without a key column, are identical); the lines are named. Nothing was created.',
  },
  ORDERLY_E_BATCH_CONFLICT: { status: 409, retryable: true, doc: 'Another retry of the batch moved its failed items first; show the batch and retry again.' },
  ORDERLY_E_BATCH_STATE_CONFLICT: {
    status: 409,
    retryable: false,
    doc: 'The batch is not in a state for this change: pause needs an open batch, resume a paused one, retry an open one; a cancelled batch stays cancelled.',
  },
  ORDERLY_E_BATCH_ITEM_TYPE: {
    status: 400,
    retryable: false,
    doc: "A CSV cell of a batch item does not parse as the type the bot's input schema gives its column (number, integer, boolean, date); the line and column are named. Nothing was created.",
  },
  ORDERLY_E_IDEMPOTENCY_KEY_REUSED: { status: 409, retryable: false, doc: 'The idempotency key belongs to a run of another bot or with another input.' },
  ORDERLY_E_RUN_NOT_CLAIMABLE: { status: 409, retryable: false, doc: 'The run is not in a state this runner may claim.' },
  ORDERLY_E_JOB_FORGED: {
    status: 400,
    retryable: false,
    doc: 'A job on a run queue is not a valid control-room-signed envelope; it is refused and never run.',
  },
  ORDERLY_E_REPORT_FORGED: {
    status: 400,
    retryable: false,
    doc: "A report on a reports queue (`orderly.reports.<segment>`, or the legacy `orderly.reports`) was unsigned, tampered, signed by an unknown or revoked runner key, came from a runner of another segment than the run's, or was found on another segment's queue than its signer's; it is recorded in `job_refusals` and the audit log and never moves a run.",
  },
  ORDERLY_E_CANCEL_REFUSED: {
    status: 400,
    retryable: false,
    doc: "A message on a segment's cancel channel was not signed by the control room, was for another segment's run, or had expired; the runner aborts nothing and logs it.",
  },
  ORDERLY_E_JOB_EXPIRED: { status: 400, retryable: false, doc: 'The job envelope is past its not-after time.' },
  ORDERLY_E_JOB_WRONG_SEGMENT: { status: 400, retryable: false, doc: "The job envelope names another segment than the runner's." },
  ORDERLY_E_BOT_FAILED: { status: 500, retryable: true, doc: 'The bot threw a system error (timeout, navigation, target error); retried.' },
  ORDERLY_E_BOT_BUSINESS: { status: 422, retryable: false, doc: 'The bot reported that the work itself cannot succeed; never retried.' },
  ORDERLY_E_BOT_TIMEOUT: { status: 504, retryable: true, doc: "The bot ran past its manifest's timeout and was aborted." },
  ORDERLY_E_BOT_HOST_CRASHED: { status: 500, retryable: true, doc: 'The bot host process or its browser died during the run.' },
  ORDERLY_E_SANDBOX_LIMIT: {
    status: 422,
    retryable: false,
    doc: "The run passed one of its sandbox's limits (memory, processes, CPU time, file size or temporary space) and was ended; the details name the limit.",
  },
  ORDERLY_E_SANDBOX_UNAVAILABLE: {
    status: 503,
    retryable: true,
    doc: 'The run sandbox could not be created (bubblewrap, user namespaces or the seccomp filter missing or failing); the run is retried, never run outside the sandbox.',
  },
  ORDERLY_E_SANDBOX_CHANNEL: {
    status: 500,
    retryable: false,
    doc: "The run's sandbox wrote on its channel to the runner a frame the runner does not take (over 16 MiB, or not JSON): the run failed and its sandbox was ended; the runner and its other runs go on.",
  },
  ORDERLY_E_SANDBOX_REQUIRED: {
    status: 500,
    retryable: false,
    doc: '`ORDERLY_SANDBOX=none` is set on a runner of a production segment (`ORDERLY_PROD_SEGMENTS`), of the prod channel or with `ORDERLY_ENV=production`: the runner refuses to start (bot code would run uncontained); use `bwrap`.',
  },
  ORDERLY_E_EGRESS_REFUSED: {
    status: 403,
    retryable: false,
    doc: "The sandbox's egress proxy refused a connection: the host and port are not in the manifest's hosts, or the address is loopback, private, link-local, metadata or Orderly's own infrastructure.",
  },
  ORDERLY_E_CONTROL_ROOM_UNAVAILABLE: { status: 503, retryable: true, doc: 'The runner could not reach the control room.' },
  ORDERLY_E_DEPENDENCY_UNAVAILABLE: { status: 503, retryable: true, doc: 'Redis or the database did not answer.' },
  ORDERLY_E_REDIS_OFFLINE_QUEUE_FULL: {
    status: 503,
    retryable: true,
    doc: 'Redis is unreachable and the client already holds the most commands it keeps for it (1000); this one was refused at once instead of waiting in memory.',
  },
  ORDERLY_E_VAULT_SEALED: { status: 503, retryable: true, doc: 'Vault answered that it is sealed (503).' },
  ORDERLY_E_VAULT_UNAVAILABLE: {
    status: 503,
    retryable: true,
    doc: 'Vault is unreachable, on standby (429) or failing (5xx) after retries within the budget.',
  },
  ORDERLY_E_VAULT_PERMISSION_DENIED: { status: 403, retryable: false, doc: 'Vault refused the path (403); the message names the path, never a value.' },
  ORDERLY_E_VAULT_WRAP_INVALID: {
    status: 400,
    retryable: false,
    doc: 'A response-wrapping token was already used, expired, or was not created for the expected path: a security event.',
  },
  ORDERLY_E_VAULT_ERROR: { status: 502, retryable: false, doc: 'Vault returned an unexpected error or a response that failed validation.' },
  ORDERLY_E_VAULT_NOT_CONFIGURED: {
    status: 400,
    retryable: false,
    doc: 'The bot declares credentials but this control room or runner has no Vault (VAULT_ADDR).',
  },
  ORDERLY_E_CREDENTIAL_CAS_CONFLICT: {
    status: 409,
    retryable: false,
    doc: 'A concurrent rotation wrote the credential first (check-and-set); read and rotate again.',
  },
  ORDERLY_E_REDACTION_VALUE_TOO_SHORT: {
    status: 400,
    retryable: false,
    doc: 'A declared PHI value or secret is too short to mask safely; it is refused rather than masking every match.',
  },
  ORDERLY_E_REDACTION_INPUT_INVALID: { status: 400, retryable: false, doc: 'A redaction eval/scan file line is not valid JSON of the documented shape.' },
  ORDERLY_E_INTERNAL: {
    status: 500,
    retryable: true,
    doc: 'An unexpected error; details are in the server log under the request id. A run attempt that ends with it is retried.',
  },
  ORDERLY_E_ATTEMPT_LOST: {
    status: 500,
    retryable: true,
    doc: "An attempt's runner died or stalled before it reported; the run is retried after its backoff, or dead-lettered once its attempts are used up.",
  },
  ORDERLY_E_ATTEMPT_STALE: {
    status: 409,
    retryable: false,
    doc: "A runner spoke for an attempt that is no longer the run's current one (a newer attempt claimed the run), or with another claim's fencing token; nothing was changed.",
  },
  ORDERLY_E_RUN_ALREADY_ACTIVE: {
    status: 409,
    retryable: true,
    doc: 'Another attempt of the run holds a live lease (a duplicate delivery of its job, or a job wrongly declared stalled): the claim is refused and recorded, and the job asks again when that lease would expire (details.retryInMs).',
  },
  ORDERLY_E_STEP_UNCERTAIN: {
    status: 409,
    retryable: false,
    doc: 'A step started on an earlier attempt never recorded done, and the bot gave no `onUncertain` policy: never re-run silently; the run is dead-lettered for an operator.',
  },
  ORDERLY_E_STEP_INVALID: {
    status: 400,
    retryable: false,
    doc: 'A step name is not 1-100 letters, digits, `.`, `_`, `:` or `-`, a step name is used twice in one attempt, or a step result is not JSON or is over 64 KiB.',
  },
  ORDERLY_E_RELEASE_MISSING: {
    status: 409,
    retryable: false,
    doc: 'The package has no release attestation for the channel of the segment (production segments need a promotion to `prod`); it is not run.',
  },
  ORDERLY_E_RELEASE_INVALID: {
    status: 400,
    retryable: false,
    doc: 'A release attestation does not verify: not signed by the release key, tampered, or for another digest.',
  },
  ORDERLY_E_RELEASE_EXPIRED: { status: 409, retryable: false, doc: 'The release attestation for the channel has expired; promote the package again.' },
  ORDERLY_E_KEY_REVOKED: { status: 409, retryable: false, doc: "The package's publisher key is revoked: it is not run or promoted anywhere." },
  ORDERLY_E_SELF_APPROVAL: {
    status: 403,
    retryable: false,
    doc: 'Separation of duties by person: the approver uploaded the package, holds its signing key (or owns the service account holding it), or owns the service account that uploaded it; or who did is not recorded.',
  },
  ORDERLY_E_BOT_NOT_OWNED: {
    status: 403,
    retryable: false,
    doc: "The bot name belongs to a team the signing key's holder is not in: a new version needs a key of the owning team. Nothing was stored and no Vault role changed.",
  },
  ORDERLY_E_TEAM_REQUIRED: {
    status: 400,
    retryable: false,
    doc: "A first publish claims the bot name for a team: the signing key's holder must be in the team named by `team` (or in exactly one team when none is named).",
  },
  ORDERLY_E_KEY_HOLDER_REQUIRED: {
    status: 400,
    retryable: false,
    doc: 'A publisher key is registered for a holder: a person (`owner: { kind: "user", name }`) or a service account owned by a person (`kind: "service"`). Nothing was registered.',
  },
  ORDERLY_E_KEY_UNBOUND: {
    status: 403,
    retryable: false,
    doc: 'The package is signed by a publisher key registered before keys had holders: such a key publishes nothing. Register a key held by a person or a service account (`orderly keys register --owner-user U`) and sign with it. Nothing was stored.',
  },
  ORDERLY_E_RUNNER_KEY_REQUIRED: {
    status: 400,
    retryable: false,
    doc: "A runner identity is registered with the public key of a key pair made on the runner (`publicKey`; `orderly runner keygen`): the control room never makes a runner's private key. Nothing was registered.",
  },
  ORDERLY_E_PERMISSIONS_NOT_ACKNOWLEDGED: {
    status: 409,
    retryable: false,
    doc: 'The version adds credentials, hosts, PHI fields or segments compared with the version in prod: the promotion must carry the digest of that permission diff (`acknowledgePermissions`), as `orderly bot promote` shows it; `details` hold the diff.',
  },
  ORDERLY_E_CLIENT_CERT_REQUIRED: { status: 401, retryable: false, doc: 'Runner routes need a TLS client certificate issued by the configured client CA.' },
  ORDERLY_E_RUN_NOT_DEAD_LETTERED: {
    status: 409,
    retryable: false,
    doc: 'The run is not (or no longer) dead-lettered: another operator may have requeued or discarded it first.',
  },
  ORDERLY_E_RUN_NOT_CANCELLABLE: {
    status: 409,
    retryable: false,
    doc: 'The run has already finished (succeeded, failed, dead-lettered, cancelled or discarded); only waiting or active runs can be cancelled.',
  },
  ORDERLY_E_RUN_PHI_PURGED: {
    status: 410,
    retryable: false,
    doc: 'The run finished longer ago than `ORDERLY_RUN_RETENTION_DAYS`: its input, result, step results, screenshots and logs were purged (a disposal record says when); its state is kept.',
  },
  ORDERLY_E_RUN_CANCELLED: { status: 409, retryable: false, doc: 'An operator cancelled the run; its bot was aborted and the job is not retried.' },
  ORDERLY_E_JOB_LOCKED: { status: 409, retryable: true, doc: "A runner still holds the run's previous job; try again in a few seconds." },
  ORDERLY_E_CONFIRMATION_REQUIRED: { status: 400, retryable: false, doc: 'A bulk change needs explicit confirmation (`--yes`); nothing was changed.' },
  ORDERLY_E_SIGN_IN_FAILED: {
    status: 401,
    retryable: false,
    doc: 'The username, password, second factor or enrolment secret is wrong; the same answer whether or not the user exists.',
  },
  ORDERLY_E_SIGN_IN_LOCKED: {
    status: 429,
    retryable: true,
    doc: 'Too many failed sign-ins for this username: locked with exponential backoff (details.retryAfterSeconds).',
  },
  ORDERLY_E_SSO_STATE_INVALID: {
    status: 401,
    retryable: false,
    doc: 'Single sign-on: the callback carries no sign-in started here, an expired one (10 minutes), or a `state` that does not match it; start again at `/v1/auth/sso/start`.',
  },
  ORDERLY_E_SSO_CALLBACK_INVALID: {
    status: 401,
    retryable: false,
    doc: "Single sign-on: the provider's answer does not verify (an error from the provider, a refused or replayed code, an ID token with a wrong issuer, audience, signature, expiry or nonce); `details.reason` says which. Nothing was changed.",
  },
  ORDERLY_E_SSO_NO_ROLE: {
    status: 403,
    retryable: false,
    doc: "Single sign-on: none of the person's groups at the provider is mapped to a role (`ORDERLY_OIDC_GROUP_ROLES`): no access, and a person linked before loses their roles and sessions.",
  },
  ORDERLY_E_SSO_MFA_REQUIRED: {
    status: 403,
    retryable: false,
    doc: "Single sign-on: the person's roles need a second factor (`ORDERLY_OIDC_MFA_ROLES`; security and approver always) and the ID token's `amr` shows none of `ORDERLY_OIDC_MFA_AMR`; sign in at the provider with MFA.",
  },
  ORDERLY_E_SSO_PROVIDER_UNAVAILABLE: {
    status: 503,
    retryable: true,
    doc: "Single sign-on: the provider's discovery document or keys could not be fetched; try again.",
  },
  ORDERLY_E_SSO_CLI_CODE_INVALID: {
    status: 401,
    retryable: false,
    doc: 'Single sign-on for the CLI (`orderly login --sso`): the one-time code from the loopback redirect is unknown, already used, older than a minute, or the PKCE verifier does not match it; run `orderly login --sso` again.',
  },
  ORDERLY_E_LOCAL_SIGN_IN_DISABLED: {
    status: 403,
    retryable: false,
    doc: 'Single sign-on is configured: local accounts (password and TOTP) sign in only when named in ORDERLY_BREAK_GLASS_USERS (none by default); sign in through the identity provider.',
  },
  ORDERLY_E_SESSION_EXPIRED: {
    status: 401,
    retryable: false,
    doc: 'The console session passed its idle timeout or absolute limit, or was signed out; sign in again.',
  },
  ORDERLY_E_CSRF_TOKEN_INVALID: {
    status: 403,
    retryable: false,
    doc: "A cookie-authenticated state-changing request lacks the session's X-CSRF-Token header.",
  },
  ORDERLY_E_STEP_UP_REQUIRED: {
    status: 403,
    retryable: false,
    doc: 'The action needs a fresh second factor: `POST /v1/session/step-up`, or an `X-Orderly-TOTP` header with an API token.',
  },
  ORDERLY_E_REASON_REQUIRED: {
    status: 400,
    retryable: false,
    doc: "Reading a run's input, result, logs or screenshots needs a reason: the `X-Orderly-Reason` header (CLI `--reason`), 3-200 characters.",
  },
  ORDERLY_E_GRANT_NOT_HELD: {
    status: 403,
    retryable: false,
    doc: 'Nobody grants a role they do not hold: the caller lacks a binding that covers one of the roles asked for.',
  },
  ORDERLY_E_ACCESS_REQUEST_INVALID: {
    status: 409,
    retryable: false,
    doc: 'The access request is not pending any more, or the caller may not confirm it (it is their own, or they lack the permission).',
  },
  ORDERLY_E_IDENTITY_CONFLICT: { status: 409, retryable: false, doc: 'A user, service account or runner identity with this name already exists.' },
  ORDERLY_E_SCHEDULE_INVALID: {
    status: 400,
    retryable: false,
    doc: 'A schedule needs exactly one of a valid cron pattern (read in the time zone of the schedule) or an interval in seconds, no more often than `ORDERLY_SCHEDULE_MIN_INTERVAL_SECONDS`, and a name of 1-64 lower-case letters, digits, `.`, `_` and `-` that is not a UUID; `calendarPolicy` needs a `calendar`, and `next_working_day` a cron pattern.',
  },
  ORDERLY_E_SCHEDULE_CONFLICT: { status: 409, retryable: false, doc: 'A schedule with this name already exists.' },
  ORDERLY_E_TRY_SECRETS_INVALID: {
    status: 400,
    retryable: false,
    doc: '`orderly bot try`: the `--secrets` file is not a readable JSON object of string values, lacks a credential the manifest declares, or names one it does not declare; nothing was run.',
  },
  ORDERLY_E_DEV_VAULT_NOT_INSTALLED: {
    status: 500,
    retryable: false,
    doc: '`orderly dev vault`: the dev Vault (the `@orderly/dev-vault` workspace, a development dependency) is not installed here, as in a production install or image; use a real Vault or OpenBao, or a development checkout.',
  },
  ORDERLY_E_TIME_ZONE_UNKNOWN: {
    status: 400,
    retryable: false,
    doc: 'The time zone is not an IANA zone name this control room knows (e.g. `Europe/Berlin`, `America/New_York`, `UTC`).',
  },
  ORDERLY_E_CALENDAR_UNKNOWN: { status: 400, retryable: false, doc: 'No business calendar has this name: create it first (`PUT /v1/calendars/NAME`).' },
  ORDERLY_E_CALENDAR_INVALID: {
    status: 400,
    retryable: false,
    doc: 'A business calendar needs a name (1-64 lower-case letters, digits, `.`, `_`, `-`), an IANA time zone, working weekdays 1-7 and holidays as `YYYY-MM-DD` dates or an iCalendar file of all-day events without RRULE.',
  },
  ORDERLY_E_CALENDAR_IN_USE: {
    status: 409,
    retryable: false,
    doc: 'A business calendar that a schedule uses cannot be deleted: move or delete the schedule first.',
  },
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

/** An error body whose retryability is the registry's: the one way to build one by hand. */
export function errorBody(code: ErrorCode, message: string, details: SafeDetails = {}): ErrorBody {
  return { code, message, retryable: ERROR_CODES[code].retryable, details };
}

/** True when `value` carries one of our codes; works across package copies, unlike instanceof. */
export function isOrderlyError(value: unknown): value is OrderlyError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    Object.hasOwn(ERROR_CODES, (value as { code: string }).code) &&
    typeof (value as { retryable?: unknown }).retryable === 'boolean'
  );
}

export function hasCode(value: unknown, code: ErrorCode): boolean {
  return isOrderlyError(value) && value.code === code;
}
