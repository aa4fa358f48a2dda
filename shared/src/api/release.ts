import { z } from 'zod';
import { KeyId, PackageDigest } from '../ids';
import { PackageView } from './schemas';
import { DsseEnvelope } from '../signing/dsse';
import { ReleaseChannel, TicketRef } from '../signing/release';

/** HTTP API shapes of promotion, release attestations and publisher key revocation. */

export const PromoteRequest = z.strictObject({
  /** prod releases a version to production segments; dev pins what development segments run without a version. */
  channel: ReleaseChannel,
  expiresInDays: z.number().int().min(1).max(365).default(90),
  ticket: TicketRef.optional(),
  /** The `digest` of the permission diff the approver was shown; required when the diff adds anything. */
  acknowledgePermissions: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type PromoteRequest = z.infer<typeof PromoteRequest>;

export const ReleaseAttestationView = z.object({
  id: z.number(),
  digest: PackageDigest,
  channel: ReleaseChannel,
  approver: z.string(),
  approvedAt: z.string(),
  expiresAt: z.string(),
  ticket: z.string().nullable(),
  /** The control room verified the signature, digest and channel of the stored envelope. */
  valid: z.boolean(),
  expired: z.boolean(),
  envelope: DsseEnvelope,
});
export type ReleaseAttestationView = z.infer<typeof ReleaseAttestationView>;

/** Why a package cannot run in a channel (an error code), or null when it can. */
const NotRunnable = z.enum(['ORDERLY_E_KEY_REVOKED', 'ORDERLY_E_RELEASE_MISSING', 'ORDERLY_E_RELEASE_INVALID', 'ORDERLY_E_RELEASE_EXPIRED']).nullable();

export const PackageStatusView = PackageView.extend({
  /** Who published it (principal id and audit actor); null for packages published before this was recorded. */
  publishedBy: z.string().nullable(),
  publishedByActor: z.string().nullable(),
  /** The team that owns the bot name; null when none does (published by legacy keys only). */
  team: z.string().nullable().optional(),
  publisherKeyRevokedAt: z.string().nullable(),
  /** Channels with a valid, unexpired release attestation. */
  channels: z.array(ReleaseChannel),
  runnable: z.object({ dev: z.boolean(), prod: z.boolean() }),
  notRunnable: z.object({ dev: NotRunnable, prod: NotRunnable }),
});
export type PackageStatusView = z.infer<typeof PackageStatusView>;

export const PackageDetailView = PackageStatusView.extend({ attestations: z.array(ReleaseAttestationView) });
export type PackageDetailView = z.infer<typeof PackageDetailView>;

/** What a runner learns about a package's release on every run (the bytes it may have cached). */
export const RunnerPackageRelease = z.object({
  publisherKeyId: KeyId,
  publisherKeyRevokedAt: z.string().nullable(),
  attestations: z.array(DsseEnvelope).max(100),
});
export type RunnerPackageRelease = z.infer<typeof RunnerPackageRelease>;

/** What a version may do beyond the version in prod: each list holds only additions. */
export const PermissionSet = z.object({
  credentials: z.array(z.string()),
  hosts: z.array(z.string()),
  phi: z.array(z.string()),
  segments: z.array(z.string()),
});
export type PermissionSet = z.infer<typeof PermissionSet>;

/** The permission diff an approver sees before promoting (`GET /v1/packages/:name/:version/permissions`). */
export const PermissionDiffView = z.object({
  name: z.string(),
  version: z.string(),
  digest: PackageDigest,
  /** The version released to prod it is compared with; null when none is (everything it declares is added). */
  against: z.object({ version: z.string(), digest: PackageDigest }).nullable(),
  added: PermissionSet,
  /** True when any list of `added` is non-empty: promotion then needs `acknowledgePermissions`. */
  widens: z.boolean(),
  /** sha256 over the canonical diff (package digest, compared digest, additions): what the approver acknowledges. */
  diffDigest: z.string(),
});
export type PermissionDiffView = z.infer<typeof PermissionDiffView>;
