import { z } from 'zod';
import { BotName, BotVersion, IdempotencyKey, KeyId, PackageDigest, RunId, SegmentName } from '../ids';
import { CredentialGrant } from '../credentials';
import { DsseEnvelope } from '../signing/dsse';
import { ErrorBodySchema, LogLine } from '../job/report';
import { RUN_STATUSES } from '../job/run-state';

/** HTTP API shapes shared by the control room (which parses requests) and its clients. */
/** Who holds a publisher key: a person (username) or a service account (name). */
export const KeyOwnerRef = z.strictObject({ kind: z.enum(['user', 'service']), name: z.string().regex(/^[A-Za-z0-9._@-]{1,100}$/) });
export type KeyOwnerRef = z.infer<typeof KeyOwnerRef>;
export const RegisterKeyRequest = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._@-]{1,100}$/),
  publicKeyPem: z.string().max(1000),
  /** Required (ORDERLY_E_KEY_HOLDER_REQUIRED when missing); optional here so that the route answers that code, not a generic one. */
  owner: KeyOwnerRef.optional(),
});
export const PublisherKeyView = z.object({
  keyId: KeyId,
  name: z.string(),
  publicKeyPem: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  /** `user:<id>` or `service:<id>`; null for a row registered before keys had holders (it publishes nothing). */
  owner: z.string().nullable().optional(),
});
export type PublisherKeyView = z.infer<typeof PublisherKeyView>;

/** The envelope as a request part: strict at every level, so an unknown field is refused, not carried along. */
const StrictDsseEnvelope = z.strictObject({
  ...DsseEnvelope.shape,
  signatures: z.array(z.strictObject(DsseEnvelope.shape.signatures.element.shape)).min(1).max(8),
});
/** `team`: the team a first publish claims the name for, when the key's owner is in several. */
export const PublishRequest = z.strictObject({
  archive: z.base64(),
  envelope: StrictDsseEnvelope,
  team: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)
    .optional(),
});
export const PackageView = z.object({
  name: BotName,
  version: BotVersion,
  digest: PackageDigest,
  publisherKeyId: KeyId,
  segments: z.array(SegmentName),
  size: z.number(),
  createdAt: z.string(),
});
export type PackageView = z.infer<typeof PackageView>;

export const CreateRunRequest = z.strictObject({
  bot: BotName,
  version: BotVersion.optional(),
  segment: SegmentName.optional(),
  input: z.record(z.string(), z.unknown()).default({}),
  idempotencyKey: IdempotencyKey.optional(),
});
export type CreateRunRequest = z.infer<typeof CreateRunRequest>;
export const CreateRunsBatchRequest = z.strictObject({ runs: z.array(CreateRunRequest).min(1).max(1000) });

export const RunView = z.object({
  id: RunId,
  idempotencyKey: IdempotencyKey,
  bot: BotName,
  version: BotVersion,
  digest: PackageDigest,
  segment: SegmentName,
  status: z.enum(RUN_STATUSES),
  attempts: z.number(),
  result: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** Set when something about the run needs a security look (see RUN_FLAGS). */
  flags: z.array(z.string()).optional(),
});
export type RunView = z.infer<typeof RunView>;
export const RunLogsView = z.object({ lines: z.array(LogLine) });

/**
 * An attempt's fencing token: random, issued at claim, stored with the attempt. Together with the
 * attempt number it names one claim; a write that carries another claim's token is refused
 * (`ORDERLY_E_ATTEMPT_STALE`), so a runner that lost its attempt cannot record anything more.
 */
export const FencingToken = z.string().regex(/^[A-Za-z0-9_-]{22,64}$/);
export type FencingToken = z.infer<typeof FencingToken>;
/** Bounds of an attempt's lease: long enough to renew over a slow link, short enough to notice a dead runner. */
export const ATTEMPT_LEASE_MIN_MS = 1000;
export const ATTEMPT_LEASE_MAX_MS = 600_000;
export const ATTEMPT_LEASE_DEFAULT_MS = 30_000;

/** What a runner receives when it claims a run it is about to execute. */
export const ClaimResponse = z.object({
  runId: RunId,
  /** Assigned by the control room: a redelivered job gets a new number, never a dead attempt's. */
  attempt: z.number().int().min(1),
  /** No attempt may follow this one (the run's attempts are used up): a failure is final. */
  final: z.boolean(),
  /** The run's idempotency key, for the bot (`ctx.idempotencyKey`): only here, never in the queue. */
  idempotencyKey: IdempotencyKey,
  input: z.record(z.string(), z.unknown()),
  /** Present when the bot declares credentials: issued now, at run start, never at queue time. */
  credentials: CredentialGrant.optional(),
  /** This attempt's fencing token: every write of the attempt carries it; another claim replaces it. */
  fence: FencingToken,
  /** The attempt's lease: renewed by the runner (`/renew`) every third of it while the run is active. */
  leaseMs: z.number().int().min(ATTEMPT_LEASE_MIN_MS).max(ATTEMPT_LEASE_MAX_MS),
});
export type ClaimResponse = z.infer<typeof ClaimResponse>;
/**
 * The claim's other answer: the run's previous attempt was lost (its runner died or stalled) and
 * is now recorded as such; no new attempt was started. The runner puts the job back for
 * `retryInMs` (the run's backoff), so a crash is retried like any other system failure.
 */
export const ClaimDeferred = z.object({ runId: RunId, lostAttempt: z.number().int().min(1), retryInMs: z.number().int().min(0) });
export type ClaimDeferred = z.infer<typeof ClaimDeferred>;
export const ClaimAnswer = z.union([ClaimResponse, ClaimDeferred]);
export type ClaimAnswer = z.infer<typeof ClaimAnswer>;
/** The runner reports its run token's accessor (never the token), so the token can be revoked. */
export const LeaseRequest = z.strictObject({ attempt: z.number().int().min(1), fence: FencingToken, accessor: z.string().min(1).max(200) });
/** `leaseMs`: how long the attempt's lease lasts without renewal (default 30 s). */
export const ClaimRequest = z.strictObject({
  runnerId: z.string().min(1).max(200),
  leaseMs: z.number().int().min(ATTEMPT_LEASE_MIN_MS).max(ATTEMPT_LEASE_MAX_MS).optional(),
});
/** Renews the lease of the attempt the fencing token belongs to (the run's current one only). */
export const RenewRequest = z.strictObject({ attempt: z.number().int().min(1), fence: FencingToken });
export const RenewResponse = z.object({ leaseMs: z.number().int().min(ATTEMPT_LEASE_MIN_MS).max(ATTEMPT_LEASE_MAX_MS) });
export type RenewResponse = z.infer<typeof RenewResponse>;

/** Step names: short, plain, safe to log and to use in an AAD. */
export const STEP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;
export const StepName = z.string().regex(STEP_NAME_PATTERN);
/** The largest step result, as JSON text: checkpoints hold references and small values, not pages. */
export const STEP_RESULT_MAX_BYTES = 64 * 1024;
/**
 * Begins a step of the current attempt. `rerun`: the bot decided to run again a step an earlier
 * attempt left uncertain (its `onUncertain` policy), taking it over for this attempt.
 */
export const StepBeginRequest = z.strictObject({ attempt: z.number().int().min(1), fence: FencingToken, name: StepName, rerun: z.boolean().default(false) });
export const StepBeginResponse = z.discriminatedUnion('state', [
  z.object({ state: z.literal('new') }),
  /** Recorded done; `result` absent when the step returned nothing. */
  z.object({ state: z.literal('done'), result: z.unknown().optional() }),
  /** Started on an earlier attempt that never recorded it done: the side effect may or may not have happened. */
  z.object({ state: z.literal('uncertain') }),
]);
export type StepBeginResponse = z.infer<typeof StepBeginResponse>;
/** Records a step of the current attempt done, with its (JSON) result; absent: it returned nothing. */
export const StepCompleteRequest = z.strictObject({ attempt: z.number().int().min(1), fence: FencingToken, name: StepName, result: z.unknown().optional() });

export const PackageAttestationsView = z.object({ publisherKeyId: KeyId, publisherPublicKeyPem: z.string(), envelope: DsseEnvelope });
