import { z } from 'zod';
import { BotName, BotVersion, IdempotencyKey, KeyId, PackageDigest, RunId, SegmentName } from '../ids';
import { CredentialGrant } from '../credentials';
import { DsseEnvelope } from '../signing/dsse';
import { ErrorBodySchema, LogLine } from '../job/report';
import { RUN_STATUSES } from '../job/run-state';

/** HTTP API shapes shared by the control room (which parses requests) and its clients. */
export const RegisterKeyRequest = z.strictObject({ name: z.string().regex(/^[A-Za-z0-9._@-]{1,100}$/), publicKeyPem: z.string().max(1000) });
export const PublisherKeyView = z.object({ keyId: KeyId, name: z.string(), publicKeyPem: z.string(), createdAt: z.string(), revokedAt: z.string().nullable() });
export type PublisherKeyView = z.infer<typeof PublisherKeyView>;

/** The envelope as a request part: strict at every level, so an unknown field is refused, not carried along. */
const StrictDsseEnvelope = z.strictObject({ ...DsseEnvelope.shape, signatures: z.array(z.strictObject(DsseEnvelope.shape.signatures.element.shape)).min(1).max(8) });
export const PublishRequest = z.strictObject({ archive: z.base64(), envelope: StrictDsseEnvelope });
export const PackageView = z.object({ name: BotName, version: BotVersion, digest: PackageDigest, publisherKeyId: KeyId, segments: z.array(SegmentName), size: z.number(), createdAt: z.string() });
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
});
export type RunView = z.infer<typeof RunView>;
export const RunLogsView = z.object({ lines: z.array(LogLine) });

/** What a runner receives when it claims a run it is about to execute. */
export const ClaimResponse = z.object({
  runId: RunId,
  attempt: z.number().int().min(1),
  input: z.record(z.string(), z.unknown()),
  /** Present when the bot declares credentials: issued now, at run start, never at queue time. */
  credentials: CredentialGrant.optional(),
});
export type ClaimResponse = z.infer<typeof ClaimResponse>;
/** The runner reports its run token's accessor (never the token), so the token can be revoked. */
export const LeaseRequest = z.strictObject({ attempt: z.number().int().min(1), accessor: z.string().min(1).max(200) });
export const ClaimRequest = z.strictObject({ attempt: z.number().int().min(1), runnerId: z.string().min(1).max(200) });

export const PackageAttestationsView = z.object({ publisherKeyId: KeyId, publisherPublicKeyPem: z.string(), envelope: DsseEnvelope });
