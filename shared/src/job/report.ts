import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../canonical-json';
import { PublicSealedBox } from '../crypto/box';
import { ERROR_CODES, ErrorCode } from '../errors';
import { RunId } from '../ids';

/** One log line of a run, already redacted by the runner before it leaves the bot host. */
export const LogLine = z.object({
  seq: z.number().int().min(0),
  at: z.iso.datetime(),
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
  msg: z.string().max(4000),
  source: z.enum(['bot', 'console', 'runner']),
});
export type LogLine = z.infer<typeof LogLine>;

export const ErrorBodySchema = z.object({
  code: z.string().refine((c): c is ErrorCode => Object.hasOwn(ERROR_CODES, c), 'unknown error code'),
  message: z.string().max(4000),
  retryable: z.boolean(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string()).readonly()])).default({}),
});

/** The part of a report that may hold PHI: sealed to the control room's X25519 key. */
export const ReportBody = z.object({
  result: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
  lines: z.array(LogLine).max(10_000).default([]),
});
export type ReportBody = z.infer<typeof ReportBody>;

/**
 * Who sent a report, and proof of it: `key` names the runner credential (a fingerprint of its
 * token's SHA-256), `mac` is HMAC-SHA256 under that SHA-256 over the rest of the report. The
 * control room keeps exactly those hashes, so it can check that a runner it knows wrote the report,
 * while Redis, which carries it, cannot write one (bodies are sealed to a public key anyone has).
 */
export const ReportSignature = z.strictObject({ key: z.string().regex(/^[a-f0-9]{32}$/), mac: z.string().regex(/^[a-f0-9]{64}$/) });

const base = { v: z.literal(1), runnerId: z.string().min(1).max(200), at: z.iso.datetime(), sig: ReportSignature };

/**
 * Reports travel from runners to the control room on `orderly.reports`. Routing fields are in
 * clear; everything else is in `sealed` (AAD: `report:<runId>:<attempt>`).
 */
export const Report = z.discriminatedUnion('kind', [
  z.object({ ...base, kind: z.literal('started'), runId: RunId, attempt: z.number().int().min(1) }),
  z.object({ ...base, kind: z.literal('logs'), runId: RunId, attempt: z.number().int().min(1), sealed: PublicSealedBox }),
  z.object({
    ...base,
    kind: z.literal('finished'),
    runId: RunId,
    attempt: z.number().int().min(1),
    outcome: z.enum(['succeeded', 'failed']),
    /** True when no further attempt will follow (success, non-retryable, or attempts exhausted). */
    final: z.boolean(),
    errorCode: z.string().optional(),
    durationMs: z.number().min(0),
    sealed: PublicSealedBox,
  }),
  /** A job the runner would not run: forged, expired, wrong segment. `runId` only if signed. */
  z.object({ ...base, kind: z.literal('refused'), jobId: z.string().max(300), runId: RunId.optional(), errorCode: z.string(), reason: z.string().max(1000) }),
]);
export type Report = z.infer<typeof Report>;

export const reportAad = (runId: string, attempt: number): string => `report:${runId}:${attempt}`;

export type UnsignedReport = Report extends infer R ? (R extends { sig: unknown } ? Omit<R, 'sig'> : never) : never;

/** The public name of a runner credential: a fingerprint of its token's SHA-256. */
export const runnerKeyId = (tokenSha256: Buffer): string => createHash('sha256').update(tokenSha256).digest('hex').slice(0, 32);

const reportMac = (tokenSha256: Buffer, unsigned: unknown): Buffer => createHmac('sha256', tokenSha256).update(canonicalJson(unsigned)).digest();

/** Signs a report with the runner's token hash (what the control room stores for it). */
export function signReport(tokenSha256: Buffer, unsigned: UnsignedReport): Report {
  // The MAC covers the report as it travels: JSON drops undefined members.
  const wire = JSON.parse(JSON.stringify(unsigned)) as UnsignedReport;
  return { ...wire, sig: { key: runnerKeyId(tokenSha256), mac: reportMac(tokenSha256, wire).toString('hex') } } as Report;
}

/** True when `report` was signed with `tokenSha256`. */
export function reportSignedBy(report: Report, tokenSha256: Buffer): boolean {
  const { sig, ...unsigned } = report;
  return timingSafeEqual(Buffer.from(sig.mac, 'hex'), reportMac(tokenSha256, unsigned));
}
