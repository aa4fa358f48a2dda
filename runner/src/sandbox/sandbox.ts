import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';
import {
  createRedactor,
  ErrorBody,
  errorBody,
  isOrderlyError,
  LogLine,
  OrderlyError,
  REDACTED_FILE_NAME,
  redactedFileName,
  Redactor,
  StepBeginResponse,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { FromHost, HostRun, HostStepAnswer, StepCall, ToHost } from '../bot-host/protocol';
import { bwrapArguments, SANDBOX_EGRESS_SOCKET, sandboxEnvironment } from './bwrap';
import { Channel, CHANNEL_FD, openChannel } from './channel';
import type { CgroupLimits, LimitGroup, SandboxLimit } from './cgroup';
import type { WarmPriority } from './warm-priority';
import { limitError } from './limit-errors';

export type HostOutcome = { ok: true; result: unknown } | { ok: false; error: ErrorBody };

export interface HostScreenshot {
  name: string;
  png: Buffer;
  failedClosed: string;
}

/** Answers a bot's step call (the runner asks the control room for the run's current attempt). */
export type StepHandler = (call: StepCall) => Promise<StepBeginResponse | { state: 'recorded' }>;

export interface RunEvents {
  onLine: (line: LogLine) => void;
  onStarted?: (contextMs: number) => void;
  onScreenshot?: (shot: HostScreenshot) => void;
  onStep?: StepHandler;
  /** A connection the egress proxy refused (host and port only). */
  onEgressRefused?: (refusal: { host: string; port: number; reason: string }) => void;
}

/** The runner's egress proxy for one sandbox: its only way out, set to the run's hosts at run time. */
export interface EgressProxy {
  setPolicy(policy: { hosts: readonly string[] } | undefined): void;
  refusals(): number;
  close(): Promise<void>;
}
export type EgressFactory = (options: {
  socketPath: string;
  socketOwner: { uid: number; gid: number } | undefined;
  onRefused: (refusal: { host: string; port: number; reason: string }) => void;
}) => Promise<EgressProxy>;

export interface SandboxLimits {
  memoryBytes: number;
  pids: number;
  fileBytes: number;
  tmpBytes: number;
  cpuSeconds: number;
}

export interface SandboxOptions {
  /** `bwrap`: namespaces, seccomp and limits; `none`: a plain child process (development only). */
  mode: 'bwrap' | 'none';
  /** Unique per sandbox: names its control group and its egress directory. */
  name: string;
  /** The slot's own uid outside the sandbox (runner is root), else undefined: the runner's uid. */
  user: { uid: number; gid: number } | undefined;
  chromiumPath: string;
  /** Host directories holding the code the sandbox runs (read-only inside). */
  codePaths: readonly string[];
  seccomp: Buffer | undefined;
  /** Absolute paths of bwrap and prlimit (bwrap mode). */
  tools: { bwrap: string; prlimit: string } | undefined;
  cgroups: CgroupLimits | undefined;
  limits: SandboxLimits;
  egress: EgressFactory;
  log: Logger;
  /** Set where the runner can give the priority back (root): the sandbox warms up yielding the CPU. */
  priority?: WarmPriority;
  entry?: string;
  /** Aborted when the runner closes: a sandbox still starting is ended at once, not awaited. */
  signal?: AbortSignal;
}

/** The compiled host entry; under ts-jest the sources run, so point at the build output. */
export function hostEntry(): string {
  return __filename.endsWith('.ts') ? join(__dirname, '../../dist/bot-host/host-main.js') : join(__dirname, '../bot-host/host-main.js');
}

/** How long a sandbox may take to start (process, SDK, Chromium) before it counts as unavailable. */
const START_TIMEOUT_MS = 30_000;
/** After the run's timeout or an abort, how long the bot gets before its sandbox is ended. */
const KILL_GRACE_MS = 5_000;
/** CPU seconds past the soft limit (SIGXCPU) before the kernel's SIGKILL, for a process that ignores SIGXCPU. */
const CPU_HARD_GRACE_SECONDS = 5;
/** How often a running sandbox's control group is checked for a passed limit. */
const LIMIT_POLL_MS = 200;
/** The largest result the runner takes from a sandbox (the host checks too; bot code may not). */
const MAX_RESULT_BYTES = 256 * 1024;

const unavailable = (message: string) => new OrderlyError('ORDERLY_E_SANDBOX_UNAVAILABLE', message);

interface Pending {
  request: Omit<HostRun, 'type'>;
  events: RunEvents;
  resolve: (outcome: HostOutcome) => void;
  /** For screenshot names: the run's values, built at the first screenshot. */
  names?: Redactor;
}

/**
 * One run's sandbox: a fresh bot host process and Chromium, started (pre-warmed) before the run
 * is known, used for exactly one run, then destroyed with every process and file in it. In
 * `bwrap` mode it lives in its own user, pid, mount, ipc, uts, cgroup and network namespaces, under
 * a seccomp filter and the run's limits; its one channel to the runner is the Node IPC socketpair
 * made at spawn, and its one way out is the egress proxy's socket.
 */
/**
 * Removes a sandbox's scratch folder (egress socket, HOME). Without bwrap (development) the
 * browser leads its own process group and may still write its profile for a moment after the
 * host is killed, so a removal can meet a folder refilled under it: retry briefly, and never let
 * a leftover temp folder turn a sandbox's end (or the error that ended it) into another error.
 */
function removeScratch(dir: string): void {
  const remove = () => rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  try {
    remove();
  } catch {
    // The browser's profile may hold a run's pages: try once more when the browser is surely gone.
    setTimeout(() => {
      try {
        remove();
      } catch {
        // Still there (0700, this sandbox's own): the next runner start's temp cleanup is the OS's.
      }
    }, 2000).unref();
  }
}

export class Sandbox {
  private pending: Pending | undefined;
  private used = false;
  private destroyed: Promise<void> | undefined;
  private exited = false;
  private readonly exit: Promise<void>;
  private stderrBeforeReady = '';
  private killTimer: NodeJS.Timeout | undefined;
  private limitTimer: NodeJS.Timeout | undefined;
  private readonly channel: Channel;
  /** Called with each message until the host is ready (boot), then `onMessage` takes over. */
  private beforeReady: ((raw: unknown) => void) | undefined;
  /** Called when the host wrote a frame the channel refused. */
  private onViolation: ((reason: string) => void) | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly group: LimitGroup | undefined,
    private readonly proxy: EgressProxy,
    private readonly egressDir: string,
    private readonly options: SandboxOptions,
  ) {
    this.exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const socket = (child.stdio as unknown as Duplex[])[CHANNEL_FD]!;
    this.channel = openChannel(socket, {
      onMessage: (raw) => (this.beforeReady ? this.beforeReady(raw) : this.onMessage(raw)),
      onViolation: (reason) => this.onViolation?.(reason),
    });
  }

  /** Starts a sandbox and waits until its host is ready (SDK loaded, Chromium launched). */
  static async start(options: SandboxOptions): Promise<Sandbox> {
    const egressDir = mkdtempSync(join(tmpdir(), 'orderly-egress-'));
    chmodSync(egressDir, 0o700);
    if (options.user) chownSync(egressDir, options.user.uid, options.user.gid);
    let sandbox: Sandbox | undefined;
    let onRefused: (refusal: { host: string; port: number; reason: string }) => void = () => undefined;
    const proxy = await options
      .egress({ socketPath: join(egressDir, 'egress.sock'), socketOwner: options.user, onRefused: (r) => onRefused(r) })
      .catch((err: unknown) => {
        removeScratch(egressDir);
        throw unavailable(`the egress proxy could not start: ${(err as Error).message}`);
      });
    let group: LimitGroup | undefined;
    try {
      group = options.cgroups?.create(options.name, options.limits);
      const child = options.mode === 'bwrap' ? spawnBwrap(options, egressDir) : forkUncontained(options, egressDir);
      if (child.pid) options.priority?.attach(child.pid);
      const started = (sandbox = new Sandbox(child, group, proxy, egressDir, options));
      onRefused = (r) => sandbox?.pending?.events.onEgressRefused?.(r);
      // Ending the child makes boot reject, so the start ends in the catch below, destroyed.
      const endStart = () => void started.destroy();
      if (options.signal?.aborted) endStart();
      options.signal?.addEventListener('abort', endStart, { once: true });
      try {
        await started.boot(options.mode === 'bwrap' ? SANDBOX_EGRESS_SOCKET : join(egressDir, 'egress.sock'));
      } finally {
        options.signal?.removeEventListener('abort', endStart);
      }
      return started;
    } catch (err) {
      if (sandbox) await sandbox.destroy();
      else {
        group?.remove();
        await proxy.close().catch(() => undefined);
        removeScratch(egressDir);
      }
      throw isOrderlyError(err) ? err : unavailable(`the sandbox could not start: ${(err as Error).message}`);
    }
  }

  /** True while the sandbox can still take its one run. */
  get ready(): boolean {
    return !this.used && !this.exited && this.destroyed === undefined;
  }

  private async boot(egressSocket: string): Promise<void> {
    const child = this.child;
    // What the sandbox prints is not copied into the runner's log (a run's output goes through its
    // redactor as log messages); only before the host is ready, bwrap's own complaints are kept.
    let ready = false;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        if (!ready && stream === child.stderr) this.stderrBeforeReady = (this.stderrBeforeReady + chunk.toString('utf8')).slice(-400);
        else this.options.log.debug({ bytes: chunk.length }, 'sandbox wrote outside a run');
      });
    }
    child.once('exit', (code, signal) => this.onExit(code, signal));
    if (this.options.mode === 'bwrap') await this.joinLimitGroup();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(unavailable(`the sandbox did not become ready within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      child.once('error', (err) => reject(unavailable(`the sandbox could not be spawned: ${err.message}`)));
      child.once('exit', () => reject(unavailable(`the sandbox exited while starting${this.stderrBeforeReady ? `: ${this.stderrBeforeReady.trim()}` : ''}`)));
      this.onViolation = (reason) => {
        clearTimeout(timer);
        reject(unavailable(`the sandbox wrote on its channel what the runner does not take (${reason}) while starting`));
      };
      this.beforeReady = (raw) => {
        if (FromHost.safeParse(raw).data?.type !== 'ready') return;
        ready = true;
        this.beforeReady = undefined;
        // From here on bot code may write on the channel: a bad frame ends this sandbox's run, not the runner.
        this.onViolation = (why) => this.channelViolated(why);
        clearTimeout(timer);
        resolve();
      };
      this.send({ type: 'init', chromiumPath: this.options.chromiumPath, egressSocket, yieldCpu: this.options.priority?.yielding ?? false });
    });
  }

  /**
   * bwrap reports the sandbox's first process on its info fd and waits on its block fd: both
   * processes join the sandbox's control group before anything inside runs, so no process of the
   * sandbox is ever outside its limits.
   */
  private async joinLimitGroup(): Promise<void> {
    const stdio = this.child.stdio as unknown as Array<Readable & Writable>;
    const info: Readable = stdio[BWRAP_FDS.info]!;
    const block: Writable = stdio[BWRAP_FDS.block]!;
    const childPid = await new Promise<number>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(unavailable('bwrap did not report its sandbox')), START_TIMEOUT_MS);
      info.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        const match = /"child-pid"\s*:\s*(\d+)/.exec(text);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      info.once('end', () => reject(unavailable(`bwrap could not create the sandbox${this.stderrBeforeReady ? `: ${this.stderrBeforeReady.trim()}` : ''}`)));
    });
    this.group?.join([this.child.pid!, childPid]);
    block.end('go');
  }

  private send(message: ToHost): void {
    this.channel.send(message);
  }

  /** The host (bot code shares its process) wrote a frame that is too big or not JSON: the run fails and its sandbox is ended. */
  private channelViolated(reason: string): void {
    this.options.log.warn({ runId: this.pending?.request.runId, reason }, 'sandbox broke its channel');
    if (this.pending)
      this.finish({
        ok: false,
        error: errorBody('ORDERLY_E_SANDBOX_CHANNEL', `the sandbox wrote on its channel to the runner what the runner does not take (${reason}); it was ended`),
      });
    else void this.destroy();
  }

  private onMessage(raw: unknown): void {
    const pending = this.pending;
    const parsed = FromHost.safeParse(raw);
    // Messages are bound to the sandbox's one run: any other run id is forged or stale, and dropped.
    if (!pending || !parsed.success || !('runId' in parsed.data) || parsed.data.runId !== pending.request.runId) return;
    const message = parsed.data;
    if (message.type === 'log') pending.events.onLine(message.line);
    else if (message.type === 'started') pending.events.onStarted?.(message.contextMs);
    else if (message.type === 'screenshot')
      pending.events.onScreenshot?.({
        name: this.screenshotName(pending, message.name),
        png: Buffer.from(message.png, 'base64'),
        failedClosed: message.failedClosed,
      });
    else if (message.type === 'step') this.answerStep(pending, message.id, message.call);
    else if (message.ok) {
      const size = Buffer.byteLength(JSON.stringify(message.result ?? null) ?? 'null');
      this.finish(
        size > MAX_RESULT_BYTES
          ? { ok: false, error: errorBody('ORDERLY_E_BOT_FAILED', 'the bot result is over 256 KiB') }
          : { ok: true, result: message.result },
      );
    } else this.finish({ ok: false, error: message.error });
  }

  /** The host redacts screenshot names, but it shares its process with the bot: redacted again here. */
  private screenshotName(pending: Pending, name: string): string {
    try {
      pending.names ??= createRedactor({ secrets: Object.values(pending.request.secrets), phi: pending.request.phi });
    } catch {
      return REDACTED_FILE_NAME;
    }
    return redactedFileName(pending.names, name);
  }

  private answerStep(pending: Pending, id: number, call: StepCall): void {
    const reply = (answer: HostStepAnswer) => {
      // The run may have ended while the control room answered: drop it.
      if (this.pending === pending) this.send(answer);
    };
    const handler = pending.events.onStep ?? (() => Promise.reject(new OrderlyError('ORDERLY_E_INTERNAL', 'this run has no step checkpoints')));
    handler(call).then(
      (answer) => reply({ type: 'step-answer', runId: pending.request.runId, id, ok: true, answer }),
      (err: unknown) => {
        const error: ErrorBody = isOrderlyError(err) ? err.toJSON() : errorBody('ORDERLY_E_INTERNAL', 'the step could not be recorded');
        reply({ type: 'step-answer', runId: pending.request.runId, id, ok: false, error });
      },
    );
  }

  /** Runs the sandbox's one bot. Resolves with the outcome (never rejects for bot failures); the sandbox is destroyed after. */
  run(request: Omit<HostRun, 'type'>, events: RunEvents): Promise<HostOutcome> {
    if (!this.ready) return Promise.reject(new OrderlyError('ORDERLY_E_INTERNAL', 'a sandbox serves exactly one run'));
    this.used = true;
    return new Promise<HostOutcome>((resolve) => {
      this.pending = { request, events, resolve };
      this.proxy.setPolicy({ hosts: request.hosts });
      // The bot's own timeout runs inside; this one ends a bot that ignores it (a busy loop).
      this.killTimer = setTimeout(
        () => this.finish({ ok: false, error: errorBody('ORDERLY_E_BOT_TIMEOUT', 'the bot ran past its timeout and its sandbox was ended') }),
        request.timeoutMs + KILL_GRACE_MS,
      );
      if (this.group) {
        this.limitTimer = setInterval(() => {
          const limit = this.group?.breached();
          if (limit) this.finish({ ok: false, error: limitError(limit) });
        }, LIMIT_POLL_MS);
      }
      this.options.priority?.hurry(); // again: a host that yielded after the pool's hurry
      this.send({ type: 'run', ...request });
    });
  }

  /** Asks the bot to stop; one that does not within the grace period has its sandbox ended. */
  abort(runId: string): void {
    if (this.pending?.request.runId !== runId) return;
    this.send({ type: 'abort', runId });
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(
      () => this.finish({ ok: false, error: errorBody('ORDERLY_E_BOT_HOST_CRASHED', 'the bot did not stop when aborted; its sandbox was ended') }),
      KILL_GRACE_MS,
    );
  }

  /** Resolves the run (once) and destroys the sandbox. */
  private finish(outcome: HostOutcome): void {
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(this.killTimer);
    clearInterval(this.limitTimer);
    // A limit passed during the run decides the outcome, whatever the bot made of it.
    const limit = this.group?.breached();
    pending.resolve(limit && (outcome.ok || outcome.error.code !== 'ORDERLY_E_SANDBOX_LIMIT') ? { ok: false, error: limitError(limit) } : outcome);
    void this.destroy();
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = true;
    if (!this.pending) return;
    this.options.log.warn({ runId: this.pending.request.runId, code, signal }, 'sandbox exited during a run');
    const bySignal: Partial<Record<NodeJS.Signals, SandboxLimit>> = { SIGXCPU: 'cpu', SIGXFSZ: 'file-size' };
    // bwrap outlives the host it runs and exits with 128 + the signal that ended it.
    const hostSignal = signal ?? (code !== null && code > 128 ? signalName(code - 128) : undefined);
    const limit = (hostSignal ? bySignal[hostSignal] : undefined) ?? this.group?.breached();
    this.finish(
      limit ? { ok: false, error: limitError(limit) } : { ok: false, error: errorBody('ORDERLY_E_BOT_HOST_CRASHED', 'the sandbox died during the run') },
    );
  }

  /** Ends every process of the sandbox and removes what it had; idempotent. */
  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      clearTimeout(this.killTimer);
      clearInterval(this.limitTimer);
      if (this.pending) this.finish({ ok: false, error: errorBody('ORDERLY_E_BOT_HOST_CRASHED', 'the sandbox was closed during the run') });
      // bwrap's death ends the sandbox's pid namespace, and with it every process in it. Without
      // bwrap (development), the host leads its own process group.
      if (!this.exited) {
        if (this.options.mode === 'none' && this.child.pid) killGroup(this.child.pid);
        this.child.kill('SIGKILL');
        await this.exit;
      }
      this.channel.close();
      await this.proxy.close().catch(() => undefined);
      this.group?.remove();
      removeScratch(this.egressDir);
    })();
    return this.destroyed;
  }
}

function signalName(n: number): NodeJS.Signals | undefined {
  return (Object.entries(constants.signals) as Array<[NodeJS.Signals, number]>).find(([, number]) => number === n)?.[0];
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** fds 4, 5 and 6 of the child: bwrap's seccomp program, info output and block. */
const BWRAP_FDS = { seccomp: 4, info: 5, block: 6 };

function spawnBwrap(options: SandboxOptions, egressDir: string): ChildProcess {
  if (!options.seccomp || !options.tools) throw unavailable('the sandbox has no seccomp filter or no bwrap');
  const args = bwrapArguments({
    codePaths: options.codePaths,
    egressDir,
    tmpBytes: options.limits.tmpBytes,
    fds: BWRAP_FDS,
    command: [process.execPath, options.entry ?? hostEntry()],
  });
  // rlimits per process, from util-linux prlimit: CPU time and file size end the offender; the
  // process count is a fallback for hosts without a pids control group.
  const rlimits = [
    '--core=0',
    // Soft below hard: at the soft limit the kernel sends SIGXCPU, which ends the process under a
    // name the runner maps to its limit; equal limits would SIGKILL it at once, which says nothing.
    `--cpu=${options.limits.cpuSeconds}:${options.limits.cpuSeconds + CPU_HARD_GRACE_SECONDS}`,
    `--fsize=${options.limits.fileBytes}`,
    ...(options.cgroups ? [] : [`--nproc=${options.limits.pids}`]),
  ];
  const child = spawn(options.tools.prlimit, [...rlimits, '--', options.tools.bwrap, ...args], {
    env: sandboxEnvironment(),
    // fd 3: the channel (a socketpair), fds 4 to 6: bwrap's.
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    ...(options.user ?? {}),
  });
  const stdio = child.stdio as unknown as Array<Readable & Writable>;
  // bwrap closes these fds once it has used them; a reset on them is not an error of ours.
  for (const fd of Object.values(BWRAP_FDS)) stdio[fd]!.on('error', () => undefined);
  stdio[BWRAP_FDS.seccomp]!.end(options.seccomp);
  return child;
}

/** Development only (`ORDERLY_SANDBOX=none`): a fresh process per run, but no namespaces, filter or limits. */
function forkUncontained(options: SandboxOptions, dir: string): ChildProcess {
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  if (options.user) chownSync(home, options.user.uid, options.user.gid);
  return spawn(process.execPath, [options.entry ?? hostEntry()], {
    env: { ...sandboxEnvironment(), HOME: home, TMPDIR: home },
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    detached: true,
    ...(options.user ?? {}),
  });
}
