import type { CredentialGrant, JobPayload, LogLine, ErrorBody, Logger, SandboxDenials } from '@orderly/shared';
import type { HostRun } from '../bot-host/protocol';
import type { ControlRoomClient } from '../control-room-client';
import type { CredentialLease } from '../credentials/lease';
import type { VerifiedBot } from '../packages/cache';
import type { HostOutcome, RunEvents } from '../sandbox/sandbox';

/**
 * The pipeline's ports: what its steps need from the world, and nothing more. The runner wires
 * the real ones (HTTP client, package cache, sandbox pool, Vault, Redis report queue); unit tests
 * wire the in-memory fakes of test/fakes/pipeline.ts.
 */

/** The control room's runner API, as far as a run attempt uses it. */
export type ControlRoomPort = Pick<ControlRoomClient, 'claim' | 'renew' | 'beginStep' | 'completeStep' | 'recordLease' | 'uploadScreenshot'>;

/** Fetched, verified and admitted packages (the package cache). */
export interface PackagePort {
  get(job: JobPayload): Promise<VerifiedBot>;
}

/** One run's sandbox: it serves exactly one run and is destroyed after it. */
export interface RunSandbox {
  run(request: Omit<HostRun, 'type'>, events: RunEvents): Promise<HostOutcome>;
  abort(runId: string): void;
  destroy(): Promise<void>;
}

/** Fresh sandboxes, one concurrency slot each (the sandbox pool). */
export interface SandboxPort {
  readonly size: number;
  acquire(slot: number): Promise<RunSandbox>;
}

/** Leases a run's declared credentials (Vault); the lease is released whatever happens. */
export interface CredentialLeaser {
  lease(request: { grant: CredentialGrant; bot: string; names: readonly string[]; deadline: number; log: Logger }): Promise<CredentialLease>;
}

export type RunOutcomeReport = { ok: true; result: unknown; flags?: readonly string[] } | { ok: false; error: ErrorBody };

/** The signed, sealed reports to the control room (the report publisher). */
export interface ReportPort {
  logs(runId: string, attempt: number, lines: LogLine[]): Promise<void>;
  finished(
    runId: string,
    attempt: number,
    outcome: RunOutcomeReport,
    final: boolean,
    durationMs: number,
    lines: LogLine[],
    fence?: string,
    sandboxDenials?: SandboxDenials,
  ): Promise<void>;
  refused(jobId: string, runId: string | undefined, errorCode: string, reason: string): Promise<void>;
}

/** Runs the control room cancelled (signed cancel messages). */
export interface CancellationPort {
  wasCancelled(runId: string): boolean;
  attach(runId: string, abort: () => void): () => void;
}
