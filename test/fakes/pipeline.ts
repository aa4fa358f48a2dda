// In-memory fakes of the runner pipeline's ports (runner/src/pipeline/ports.ts): a control room,
// packages, sandboxes, a credential leaser, a report publisher and cancellations, each recording
// what it was asked, each told how to fail. All data here is synthetic; keys are made per test.
import { generateKeyPairSync, KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  BotManifest,
  ClaimAnswer,
  ClaimResponse,
  createLogger,
  ErrorBody,
  errorBody,
  JobPayload,
  LogLine,
  OrderlyError,
  RenewResponse,
  signJob,
  StepBeginResponse,
} from '@orderly/shared';
import type { ErrorCode, Logger, SandboxDenials } from '@orderly/shared';
import type { HostRun } from '../../runner/src/bot-host/protocol';
import type { CredentialLease } from '../../runner/src/credentials/lease';
import type { VerifiedBot } from '../../runner/src/packages/cache';
import type { PipelineDeps } from '../../runner/src/pipeline/attempt';
import type {
  CancellationPort,
  ControlRoomPort,
  CredentialLeaser,
  PackagePort,
  ReportPort,
  RunOutcomeReport,
  RunSandbox,
  SandboxPort,
} from '../../runner/src/pipeline/ports';
import type { HostOutcome, RunEvents } from '../../runner/src/sandbox/sandbox';

export const SEGMENT = 'demo' as PipelineDeps['segment'];

/** A logger whose every line is kept, to look for what must never be logged. */
export function capturedLogger(): { log: Logger; text(): string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { log: createLogger({ level: 'debug', name: 'test' }, sink), text: () => lines.join('') };
}

/** A control room signing key pair, made for the test. */
export function controlRoomKeys(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

const fakeDigest = () => `sha256:${randomBytes(32).toString('hex')}`;

export function jobPayload(overrides: Partial<JobPayload> = {}): JobPayload {
  const now = Date.now();
  return {
    v: 1,
    runId: randomUUID() as JobPayload['runId'],
    jobId: `job-${randomBytes(16).toString('hex')}`,
    segment: SEGMENT,
    bot: {
      name: 'fake-bot' as JobPayload['bot']['name'],
      version: '1.0.0' as JobPayload['bot']['version'],
      digest: fakeDigest() as JobPayload['bot']['digest'],
    },
    publisherKeyId: randomBytes(32).toString('hex') as JobPayload['publisherKeyId'],
    issuedAt: new Date(now).toISOString(),
    notAfter: new Date(now + 60_000).toISOString(),
    ...overrides,
  };
}

/** A queue job as BullMQ hands it over: signed by `key` (the control room's, or a forger's). */
export function queueJob(payload: JobPayload, key: KeyObject): { id: string; data: unknown } {
  return { id: payload.jobId, data: signJob(payload, key) };
}

/** A verified package of a bot with one PHI input field (`memberId`), optionally declaring credentials. */
export function verifiedBot(manifest: Partial<Record<keyof BotManifest, unknown>> = {}): VerifiedBot {
  return {
    digest: fakeDigest() as VerifiedBot['digest'],
    code: 'module.exports = async () => ({ ok: true });',
    manifest: BotManifest.parse({
      name: 'fake-bot',
      version: '1.0.0',
      entry: 'index.js',
      segments: ['demo'],
      input: { type: 'object', properties: { memberId: { type: 'string' } }, required: ['memberId'] },
      phi: ['memberId'],
      hosts: ['portal.example.test'],
      timeoutSeconds: 30,
      ...manifest,
    }),
  };
}

/** Synthetic values only: what a run of the fake bot claims and leases. */
export const FAKE_MEMBER_ID = 'FAKE-MEMBER-7Q2Z9X';
export const FAKE_PASSWORD = 'fake-password-Zq8vL3nR';

export function claimFor(payload: JobPayload, overrides: Partial<ClaimResponse> = {}): ClaimResponse {
  return {
    runId: payload.runId,
    attempt: 1,
    final: false,
    idempotencyKey: 'idem-fake-1' as ClaimResponse['idempotencyKey'],
    input: { memberId: FAKE_MEMBER_ID },
    fence: randomBytes(18).toString('base64url'),
    leaseMs: 30_000,
    ...overrides,
  };
}

type Call = { op: string; args: unknown[] };
type Answer<T> = T | Error | (() => Promise<T>);

async function answer<T>(a: Answer<T>): Promise<T> {
  if (a instanceof Error) throw a;
  if (typeof a === 'function') return (a as () => Promise<T>)();
  return a;
}

/** The control room: claims answer from a queue (then with `defaultClaim`); every call is recorded. */
export class FakeControlRoom implements ControlRoomPort {
  readonly calls: Call[] = [];
  readonly claims: Array<Answer<ClaimAnswer>> = [];
  defaultClaim: Answer<ClaimAnswer> | undefined;
  renewAnswer: Answer<RenewResponse> = { leaseMs: 30_000 } as RenewResponse;
  recordLeaseAnswer: Answer<void> = undefined;
  uploadAnswer: Answer<void> = undefined;
  beginAnswer: Answer<StepBeginResponse> = { state: 'begun' } as unknown as StepBeginResponse;
  completeAnswers: Array<Answer<void>> = [];

  ops(): string[] {
    return this.calls.map((c) => c.op);
  }
  claim(...args: [string, string, number?]): Promise<ClaimAnswer> {
    this.calls.push({ op: 'claim', args });
    const next = this.claims.shift() ?? this.defaultClaim;
    if (next === undefined) return Promise.reject(new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', 'no claim configured'));
    return answer(next);
  }
  renew(...args: [string, number, string]): Promise<RenewResponse> {
    this.calls.push({ op: 'renew', args });
    return answer(this.renewAnswer);
  }
  beginStep(...args: [string, number, string, string, boolean]): Promise<StepBeginResponse> {
    this.calls.push({ op: 'beginStep', args });
    return answer(this.beginAnswer);
  }
  completeStep(...args: [string, number, string, string, unknown]): Promise<void> {
    this.calls.push({ op: 'completeStep', args });
    return answer(this.completeAnswers.shift());
  }
  recordLease(...args: [string, number, string, string]): Promise<void> {
    this.calls.push({ op: 'recordLease', args });
    return answer(this.recordLeaseAnswer);
  }
  uploadScreenshot(...args: [string, number, string, Buffer]): Promise<void> {
    this.calls.push({ op: 'uploadScreenshot', args });
    return answer(this.uploadAnswer);
  }
}

export class FakePackages implements PackagePort {
  readonly asked: JobPayload[] = [];
  constructor(public result: Answer<VerifiedBot>) {}
  get(job: JobPayload): Promise<VerifiedBot> {
    this.asked.push(job);
    return answer(this.result);
  }
}

/** What a fake bot does in its sandbox: emit events, then end with an outcome. */
export type FakeBot = (request: Omit<HostRun, 'type'>, events: RunEvents, sandbox: FakeSandbox) => Promise<HostOutcome>;

export const succeeds =
  (result: unknown = { eligible: true }): FakeBot =>
  async () => ({ ok: true, result });
export const fails =
  (code: ErrorCode, message = 'the fake bot failed'): FakeBot =>
  async () => ({ ok: false, error: errorBody(code, message) });
/** A bot that runs until it is aborted, then ends as an aborted bot does. */
export const runsUntilAborted: FakeBot = (_request, _events, sandbox) =>
  new Promise((resolve) => sandbox.onAbort(() => resolve({ ok: false, error: errorBody('ORDERLY_E_BOT_TIMEOUT', 'the bot was aborted') })));

export class FakeSandbox implements RunSandbox {
  readonly requests: Array<Omit<HostRun, 'type'>> = [];
  readonly aborted: string[] = [];
  destroyed = 0;
  private abortListeners: Array<() => void> = [];

  constructor(
    readonly slot: number,
    private readonly bot: FakeBot,
  ) {}

  onAbort(listener: () => void): void {
    this.abortListeners.push(listener);
  }
  run(request: Omit<HostRun, 'type'>, events: RunEvents): Promise<HostOutcome> {
    this.requests.push(request);
    return this.bot(request, events, this);
  }
  abort(runId: string): void {
    this.aborted.push(runId);
    for (const listener of this.abortListeners.splice(0)) listener();
  }
  destroy(): Promise<void> {
    this.destroyed++;
    return Promise.resolve();
  }
}

/** Sandboxes for `bot`; `failAcquire` makes the next acquires fail with it. */
export class FakeSandboxPool implements SandboxPort {
  readonly made: FakeSandbox[] = [];
  readonly acquired: number[] = [];
  failAcquire: Error | undefined;
  constructor(
    public bot: FakeBot = succeeds(),
    readonly size = 1,
  ) {}
  async acquire(slot: number): Promise<FakeSandbox> {
    this.acquired.push(slot);
    if (this.failAcquire) throw this.failAcquire;
    const sandbox = new FakeSandbox(slot, this.bot);
    this.made.push(sandbox);
    return sandbox;
  }
}

export class FakeLeaser implements CredentialLeaser {
  readonly leases: Array<{ accessor: string; released: number }> = [];
  failWith: Error | undefined;
  constructor(readonly secrets: Record<string, string> = { password: FAKE_PASSWORD }) {}
  async lease(): Promise<CredentialLease> {
    if (this.failWith) throw this.failWith;
    const record = { accessor: `accessor-${this.leases.length + 1}`, released: 0 };
    this.leases.push(record);
    return { secrets: Object.freeze({ ...this.secrets }), accessor: record.accessor, release: async () => void record.released++ };
  }
}

export interface FinishedReport {
  runId: string;
  attempt: number;
  outcome: RunOutcomeReport;
  final: boolean;
  lines: LogLine[];
  fence: string | undefined;
  sandboxDenials: SandboxDenials | undefined;
}

/** The report publisher: `failFinished` reports fail with the given errors, one each, in order. */
export class FakeReports implements ReportPort {
  readonly logBatches: LogLine[][] = [];
  readonly finishedReports: FinishedReport[] = [];
  readonly refusals: Array<{ jobId: string; runId: string | undefined; code: string; reason: string }> = [];
  readonly failFinished: Error[] = [];
  failRefused: Error | undefined;
  async logs(_runId: string, _attempt: number, lines: LogLine[]): Promise<void> {
    this.logBatches.push(lines);
  }
  async finished(
    runId: string,
    attempt: number,
    outcome: RunOutcomeReport,
    final: boolean,
    _durationMs: number,
    lines: LogLine[],
    fence?: string,
    sandboxDenials?: SandboxDenials,
  ): Promise<void> {
    const failure = this.failFinished.shift();
    if (failure) throw failure;
    this.finishedReports.push({ runId, attempt, outcome, final, lines, fence, sandboxDenials });
  }
  async refused(jobId: string, runId: string | undefined, code: string, reason: string): Promise<void> {
    if (this.failRefused) throw this.failRefused;
    this.refusals.push({ jobId, runId, code, reason });
  }
  /** Everything reported, as one text (to look for what must never be in it). */
  text(): string {
    return JSON.stringify({ logs: this.logBatches, finished: this.finishedReports, refused: this.refusals });
  }
  errorOf(i = 0): ErrorBody | undefined {
    const o = this.finishedReports[i]?.outcome;
    return o && !o.ok ? o.error : undefined;
  }
}

export class FakeCancellations implements CancellationPort {
  private readonly cancelled = new Set<string>();
  private readonly aborts = new Map<string, () => void>();
  cancel(runId: string): void {
    this.cancelled.add(runId);
    this.aborts.get(runId)?.();
  }
  wasCancelled(runId: string): boolean {
    return this.cancelled.has(runId);
  }
  attach(runId: string, abort: () => void): () => void {
    this.aborts.set(runId, abort);
    if (this.cancelled.has(runId)) abort();
    return () => void this.aborts.delete(runId);
  }
}

/** Every fake, wired as the pipeline's deps; `overrides` replace any of them. */
export function fakePipeline(overrides: Partial<PipelineDeps> = {}) {
  const keys = controlRoomKeys();
  const client = new FakeControlRoom();
  const packages = new FakePackages(verifiedBot());
  const sandboxes = (overrides.sandboxes as FakeSandboxPool | undefined) ?? new FakeSandboxPool();
  const reports = new FakeReports();
  const leaser = new FakeLeaser();
  const cancellations = new FakeCancellations();
  const captured = capturedLogger();
  const deps: PipelineDeps = {
    segment: SEGMENT,
    runnerId: 'fake-runner-1',
    controlRoomSigningKey: keys.publicKey,
    client,
    packages,
    sandboxes,
    reports,
    credentials: leaser,
    cancellations,
    log: captured.log,
    random: () => 0,
    ...overrides,
  };
  /** A job signed by the control room, whose claim (by default) succeeds. */
  const job = (payload = jobPayload(), claim: Partial<ClaimResponse> = {}) => {
    client.defaultClaim = claimFor(payload, claim);
    return { payload, job: queueJob(payload, keys.privateKey) };
  };
  return { deps, keys, client, packages, sandboxes, reports, leaser, cancellations, captured, job };
}
