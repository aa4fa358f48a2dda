import { ChildProcess, fork } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorBody, isOrderlyError, LogLine, OrderlyError, StepBeginResponse } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { FromHost, HostRun, HostStepAnswer, StepCall } from './protocol';

export type HostOutcome = { ok: true; result: unknown } | { ok: false; error: ErrorBody };

/** The compiled host entry; under ts-jest the sources run, so point at the build output. */
export function hostEntry(): string {
  return __filename.endsWith('.ts') ? join(__dirname, '../../dist/bot-host/host-main.js') : join(__dirname, 'host-main.js');
}

/** Looks up a local user for the bot host. Undefined: run as the runner's own user. */
export function resolveHostUser(name: string, log: Logger): { uid: number; gid: number } | undefined {
  if (name === '' || name === 'same') return undefined;
  if (process.getuid?.() !== 0) {
    log.warn({ user: name }, 'runner is not root: the bot host runs as the same user; isolation is limited to a scrubbed environment');
    return undefined;
  }
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === name);
  if (!entry) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `ORDERLY_BOT_HOST_USER: no local user ${name}`);
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

export interface HostScreenshot {
  name: string;
  png: Buffer;
  failedClosed: string;
}

/** Answers a bot's step call (the runner asks the control room for the run's current attempt). */
export type StepHandler = (call: StepCall) => Promise<StepBeginResponse | { state: 'recorded' }>;

interface Pending {
  runId: string;
  onStep: StepHandler;
  onLine: (line: LogLine) => void;
  onScreenshot: (shot: HostScreenshot) => void;
  onStarted: (contextMs: number) => void;
  resolve: (outcome: HostOutcome) => void;
}

/**
 * The runner's handle on one bot host process. The host is started with an empty environment
 * (PATH and a private HOME only) and, given a user, under that user; it is restarted after a crash.
 */
export class BotHost {
  private child: ChildProcess | undefined;
  private ready: Promise<void> | undefined;
  private pending: Pending | undefined;
  private home: string | undefined;
  private closed = false;

  constructor(private readonly options: { chromiumPath: string; user: { uid: number; gid: number } | undefined; log: Logger; entry?: string }) {}

  /** Starts the host and its browser (idempotent). */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new OrderlyError('ORDERLY_E_INTERNAL', 'bot host is closed'));
    if (this.ready) return this.ready;
    this.home = mkdtempSync(join(tmpdir(), 'orderly-bot-host-'));
    if (this.options.user) chownSync(this.home, this.options.user.uid, this.options.user.gid);
    const child = fork(this.options.entry ?? hostEntry(), [], {
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: this.home, TMPDIR: this.home, LANG: 'C.UTF-8' },
      cwd: this.home,
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      ...(this.options.user ?? {}),
    });
    this.child = child;
    // The host routes everything a bot prints into run logs; anything else it writes (a crash
    // in Node itself) is counted, never copied raw into the runner's log.
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk: Buffer) => this.options.log.debug({ bytes: chunk.length }, 'bot host wrote outside a run'));
    this.ready = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.on('message', (raw) => this.onMessage(raw, resolve));
      child.once('exit', (code, signal) => {
        this.child = undefined;
        this.ready = undefined;
        reject(new OrderlyError('ORDERLY_E_BOT_HOST_CRASHED', 'bot host exited while starting'));
        const pending = this.pending;
        this.pending = undefined;
        if (pending) {
          this.options.log.warn({ runId: pending.runId, code, signal }, 'bot host died during a run');
          pending.resolve({ ok: false, error: { code: 'ORDERLY_E_BOT_HOST_CRASHED', message: 'the bot host process died during the run', retryable: true, details: {} } });
        }
      });
    });
    child.send({ type: 'init', chromiumPath: this.options.chromiumPath });
    return this.ready;
  }

  private onMessage(raw: unknown, ready: () => void): void {
    const parsed = FromHost.safeParse(raw);
    if (!parsed.success) return;
    const message = parsed.data;
    if (message.type === 'ready') return ready();
    const pending = this.pending;
    if (!pending || pending.runId !== message.runId) return;
    if (message.type === 'log') pending.onLine(message.line);
    else if (message.type === 'started') pending.onStarted(message.contextMs);
    else if (message.type === 'screenshot') pending.onScreenshot({ name: message.name, png: Buffer.from(message.png), failedClosed: message.failedClosed });
    else if (message.type === 'step') this.answerStep(pending, message.id, message.call);
    else {
      this.pending = undefined;
      pending.resolve(message.ok ? { ok: true, result: message.result } : { ok: false, error: message.error });
    }
  }

  private answerStep(pending: Pending, id: number, call: StepCall): void {
    const reply = (answer: HostStepAnswer) => {
      // The run may have ended (or the host died) while the control room answered: drop it.
      if (this.pending === pending) this.child?.send(answer);
    };
    pending.onStep(call).then(
      (answer) => reply({ type: 'step-answer', runId: pending.runId, id, ok: true, answer }),
      (err: unknown) => {
        const error: ErrorBody = isOrderlyError(err) ? err.toJSON() : { code: 'ORDERLY_E_INTERNAL', message: 'the step could not be recorded', retryable: true, details: {} };
        reply({ type: 'step-answer', runId: pending.runId, id, ok: false, error });
      },
    );
  }

  /** Runs one bot in the host. Resolves with the outcome; never rejects for bot failures. */
  async run(
    request: Omit<HostRun, 'type'>,
    events: { onLine: (line: LogLine) => void; onStarted?: (contextMs: number) => void; onScreenshot?: (shot: HostScreenshot) => void; onStep?: StepHandler },
  ): Promise<HostOutcome> {
    await this.start();
    if (this.pending) throw new OrderlyError('ORDERLY_E_INTERNAL', 'bot host is busy');
    return new Promise<HostOutcome>((resolve) => {
      const noSteps: StepHandler = () => Promise.reject(new OrderlyError('ORDERLY_E_INTERNAL', 'this host runs bots without step checkpoints'));
      this.pending = { runId: request.runId, onStep: events.onStep ?? noSteps, onLine: events.onLine, onStarted: events.onStarted ?? (() => undefined), onScreenshot: events.onScreenshot ?? (() => undefined), resolve };
      this.child!.send({ type: 'run', ...request });
    });
  }

  abort(runId: string): void {
    this.child?.send({ type: 'abort', runId });
  }

  /** Kills the host process (a crash test, or a host that stopped answering). */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  /** Stops the host and its browser; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (child) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (this.home) rmSync(this.home, { recursive: true, force: true });
  }
}
