import { z } from 'zod';

/** Branded identifiers: a RunId cannot be passed where a BotName is expected. */
export const RunId = z.uuid().brand<'RunId'>();
export type RunId = z.infer<typeof RunId>;

/** Bot names: lower-case words joined by `-`, safe in paths, queue names and URLs. */
export const BotName = z
  .string()
  .regex(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/, 'lower-case letters, digits and single dashes')
  .max(64)
  .brand<'BotName'>();
export type BotName = z.infer<typeof BotName>;

/** Semantic version, without build metadata (which would not survive a URL). */
export const BotVersion = z
  .string()
  .regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$/, 'a semantic version such as 1.2.3')
  .max(64)
  .brand<'BotVersion'>();
export type BotVersion = z.infer<typeof BotVersion>;

/** `sha256:` followed by 64 lower-case hex digits. */
export const PackageDigest = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>')
  .brand<'PackageDigest'>();
export type PackageDigest = z.infer<typeof PackageDigest>;

/** Segment names end up in queue names (`orderly.run.<segment>`): BullMQ forbids `:` there. */
export const SegmentName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits and dashes')
  .brand<'SegmentName'>();
export type SegmentName = z.infer<typeof SegmentName>;

/** Idempotency keys become BullMQ job ids, which may not contain `:` nor be plain integers. */
export const IdempotencyKey = z
  .string()
  .regex(/^(?!\d+$)[A-Za-z0-9._-]{1,200}$/, '1-200 of A-Z a-z 0-9 . _ -, not only digits')
  .brand<'IdempotencyKey'>();
export type IdempotencyKey = z.infer<typeof IdempotencyKey>;

/** Key ids are the hex sha256 of the public key's SPKI DER encoding. */
export const KeyId = z
  .string()
  .regex(/^[0-9a-f]{64}$/)
  .brand<'KeyId'>();
export type KeyId = z.infer<typeof KeyId>;

export const runQueueName = (segment: SegmentName): string => `orderly.run.${segment}`;
/**
 * Reports travel on one queue per segment: a segment's Redis user may push only to its own, so a
 * runner of one segment cannot read, delete or flood another segment's reports.
 */
export const reportsQueueName = (segment: SegmentName): string => `orderly.reports.${segment}`;
/**
 * The one shared reports queue of releases before per-segment queues. Only the control room still
 * consumes it (reports left there at upgrade are applied once, with the same signature checks);
 * no runner publishes to it and no runner's Redis user may reach it.
 */
export const LEGACY_REPORTS_QUEUE = 'orderly.reports';
