import { createHash, createPublicKey, KeyObject, sign, verify } from 'node:crypto';
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

/** Flags a runner may raise on a run: `secret_in_result`, a leased secret was masked out of its result. */
export const RUN_FLAGS = ['secret_in_result'] as const;
export type RunFlag = (typeof RUN_FLAGS)[number];

/** The part of a report that may hold PHI: sealed to the control room's X25519 key. */
export const ReportBody = z.object({
  result: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
  lines: z.array(LogLine).max(10_000).default([]),
  /** Why the run is flagged (`secret_in_result`: a leased secret was masked out of the result). */
  flags: z.array(z.enum(RUN_FLAGS)).max(8).default([]),
});
export type ReportBody = z.infer<typeof ReportBody>;

/**
 * Who sent a report, and proof of it: `key` names the runner's Ed25519 key (a fingerprint of its
 * public key), `ed25519` is that key's signature over the rest of the report. The private key
 * never leaves the runner (a 0600 file); the control room keeps only public keys, so neither
 * Redis, which carries reports, nor someone who reads the control room's database can write one
 * (bodies are sealed to a public key anyone has, so the signature is the only proof of origin).
 */
export const ReportSignature = z.strictObject({ key: z.string().regex(/^[a-f0-9]{32}$/), ed25519: z.string().regex(/^[A-Za-z0-9_-]{86}$/) });

/**
 * What a run's sandbox refused during the attempt, counted by the runner (outside the sandbox,
 * so bot code cannot change the count): `egress`, connections the egress proxy refused. In clear
 * beside the outcome, for the control room's metrics: counts only, never a host or a path.
 */
export const SandboxDenials = z.strictObject({ egress: z.number().int().min(0) });
export type SandboxDenials = z.infer<typeof SandboxDenials>;

const base = { v: z.literal(1), runnerId: z.string().min(1).max(200), at: z.iso.datetime(), sig: ReportSignature };

/**
 * Reports travel from runners to the control room on `orderly.reports.<segment>`. Routing fields are in
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
    /** The attempt's fencing token (from its claim): a report without it, or with another claim's, moves nothing. */
    fence: z.string().max(64).optional(),
    /** What the run's sandbox refused (absent from runners before it was counted). */
    sandboxDenials: SandboxDenials.optional(),
    sealed: PublicSealedBox,
  }),
  /** A job the runner would not run: forged, expired, wrong segment. `runId` only if signed. */
  z.object({ ...base, kind: z.literal('refused'), jobId: z.string().max(300), runId: RunId.optional(), errorCode: z.string(), reason: z.string().max(1000) }),
]);
export type Report = z.infer<typeof Report>;

export const reportAad = (runId: string, attempt: number): string => `report:${runId}:${attempt}`;

export type UnsignedReport = Report extends infer R ? (R extends { sig: unknown } ? Omit<R, 'sig'> : never) : never;

/** The public name of a runner's signing key: the first 128 bits of SHA-256 over its SPKI DER. */
export function runnerKeyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 32);
}

/** Domain separation: a report signature can never be replayed as any other Ed25519 signature. */
const SIGNED_PREFIX = Buffer.from('orderly.report.v1\n');
const signedBytes = (unsigned: unknown): Buffer => Buffer.concat([SIGNED_PREFIX, Buffer.from(canonicalJson(unsigned), 'utf8')]);

/** Signs a report with the runner's Ed25519 private key. */
export function signReport(privateKey: KeyObject, unsigned: UnsignedReport): Report {
  // The signature covers the report as it travels: JSON drops undefined members.
  const wire = JSON.parse(JSON.stringify(unsigned)) as UnsignedReport;
  const publicKey = createPublicKey(privateKey);
  return { ...wire, sig: { key: runnerKeyId(publicKey), ed25519: sign(null, signedBytes(wire), privateKey).toString('base64url') } } as Report;
}

/** True when `report` was signed with the private key of `publicKey`. */
export function reportSignedBy(report: Report, publicKey: KeyObject): boolean {
  const { sig, ...unsigned } = report;
  try {
    return verify(null, signedBytes(unsigned), publicKey, Buffer.from(sig.ed25519, 'base64url'));
  } catch {
    return false;
  }
}
