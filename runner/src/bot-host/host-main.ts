/**
 * The bot host: the first process in a run's sandbox. It is started (pre-warmed) before its run is
 * known, launches the sandbox's own Chromium, runs exactly one bot and is then destroyed with the
 * sandbox, so nothing a bot leaves behind (listeners, patched modules, files, children) meets
 * another run. Everything here is as untrusted as the bot, which shares the process: the runner
 * parses every message it sends and binds it to the sandbox's one run.
 */
import { createRequire, isBuiltin } from 'node:module';
import { Socket } from 'node:net';
import { format } from 'node:util';
import vm from 'node:vm';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createRedactor, ErrorBody, errorBody, LogLine, REDACTION_FAILED, redactedFileName, Redactor } from '@orderly/shared';
import type { BotContext, BotDefinition } from '@orderly/shared/sdk';
import { isAllowedUrl, launchChromium } from '../browser/launch';
import { bridgeLoopbackToSocket, bridgeProxyUrl, chromiumProxyArgs, proxyEnvironment } from '../egress/bridge';
import { createEgressFetch } from '../egress/fetch';
import { CHANNEL_FD, openChannel } from '../sandbox/channel';
import { limitError } from '../sandbox/limit-errors';
import { yieldWhileWarming } from '../sandbox/warm-priority';
import { maskedScreenshot } from '../browser/masked-screenshot';
import { FromHost, HostRun, HostStepAnswer, StepCall, ToHost } from './protocol';
import { OutputLines } from './output-lines';
import { createStepRunner, StepError } from './steps';

let chromiumPath = '';
/** Chromium's and libraries' way out: the egress proxy, through this sandbox's loopback bridge. */
let proxyArgs: string[] = [];
let browser: Browser | undefined;
/** A sandbox serves one run: a second `run` message is refused. */
let ran = false;
let active: { runId: string; controller: AbortController; seq: number; redactor: Redactor | undefined } | undefined;
/** Step calls waiting for the runner's answer, by call id. */
const stepCalls = new Map<number, { runId: string; resolve: (answer: HostStepAnswer) => void }>();
let nextStepCall = 0;

/**
 * Relays a step call to the runner (which asks the control room) and waits for its answer. Only
 * while this run is the active one: bot code that outlives its run (it ignored the abort) must
 * not reach the next run's attempt, which may be the same run's retry on this very host.
 */
function stepRpc(runId: string, controller: AbortController) {
  return (call: StepCall) =>
    new Promise<HostStepAnswer>((resolve) => {
      if (active?.controller !== controller || controller.signal.aborted) {
        resolve({ type: 'step-answer', runId, id: 0, ok: false, error: errorBody('ORDERLY_E_ATTEMPT_STALE', 'this run has ended') });
        return;
      }
      const id = ++nextStepCall;
      stepCalls.set(id, { runId, resolve });
      send({ type: 'step', runId, id, call });
    }).then((answer) => {
      if (!answer.ok) throw new StepError(answer.error);
      return answer.answer;
    });
}

/**
 * The channel to the runner (fd 3, a socketpair made at spawn). Bot code shares this process and
 * can write to it too: the runner binds every frame to this sandbox's one run, and ends the
 * sandbox on one it cannot read.
 */
const channel = openChannel(new Socket({ fd: CHANNEL_FD, readable: true, writable: true }), {
  onMessage: (raw) => onRunnerMessage(raw),
  onViolation: () => process.exit(1), // the runner never writes a bad frame
  // The runner's death ends the host (and its browser) too.
  onClose: () => void (browser?.close() ?? Promise.resolve()).finally(() => process.exit(0)),
});

function send(message: FromHost): void {
  channel.send(message);
}

/** The longest log line or error message the runner takes (`LogLine`, `ErrorBody`). */
const MAX_TEXT = 4000;

/**
 * `text` cut to what the runner takes. A longer text is redacted whole with the run's values
 * before the cut: cut first, a value straddling the cut would reach the runner as a fragment its
 * redactor cannot recognise. Fails closed: without a redactor, or if it fails, the text is dropped.
 */
function fitted(text: string): string {
  if (text.length <= MAX_TEXT) return text;
  try {
    return active?.redactor ? active.redactor.redactPrefix(text, MAX_TEXT) : REDACTION_FAILED;
  } catch {
    return REDACTION_FAILED;
  }
}

/** Every line the bot writes, through ctx.log, console or stdout, goes to the runner, tagged with the run. */
function emit(level: LogLine['level'], source: LogLine['source'], msg: string): void {
  if (!active) return;
  send({ type: 'log', runId: active.runId, line: { seq: active.seq++, at: new Date().toISOString(), level, source, msg: fitted(msg) } });
}

const PINO_LEVELS: Record<number, LogLine['level']> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

function botLogger() {
  return pino(
    { level: 'debug', base: undefined, timestamp: false },
    {
      write(line: string) {
        const { level, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string };
        const rest = Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
        emit(PINO_LEVELS[level] ?? 'info', 'bot', `${msg ?? ''}${rest}`);
      },
    },
  );
}

// Console and raw stdout/stderr writes become run log lines; nothing a bot prints reaches the
// runner's own output unredacted.
for (const [method, level] of [
  ['log', 'info'],
  ['info', 'info'],
  ['debug', 'debug'],
  ['warn', 'warn'],
  ['error', 'error'],
] as const) {
  console[method] = (...args: unknown[]) => emit(level, 'console', format(...args));
}
// Raw writes are joined into lines first, so that a value written in pieces is redacted whole.
const rawOutputs = [process.stdout, process.stderr].map((stream) => {
  const lines = new OutputLines((line) => emit('info', 'console', line));
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) lines.write(chunk);
    // write(chunk, callback) and write(chunk, encoding, callback) are called back, as Node does.
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    if (callback) process.nextTick(callback);
    return true;
  }) as typeof stream.write;
  return lines;
});
/** Partial lines of raw writes go out before the run's end is reported (and its lines are closed). */
const flushRawOutput = () => {
  for (const lines of rawOutputs) lines.flush();
};

const nodeRequire = createRequire(__filename);

function builtinOnlyRequire(id: string): unknown {
  if (isBuiltin(id)) return nodeRequire(id);
  throw new Error(`bots may require only Node built-ins, not ${id}: bundle it with the bot`);
}

function loadBot(code: string, filename: string): BotDefinition {
  const module = { exports: {} as Record<string, unknown> };
  const factory = vm.compileFunction(code, ['module', 'exports', 'require'], { filename });
  factory(module, module.exports, builtinOnlyRequire);
  const candidate = (module.exports.default ?? module.exports) as Partial<BotDefinition>;
  if (candidate.orderlyBot !== 1 || typeof candidate.run !== 'function') {
    throw Object.assign(new Error('the entry does not export defineBot(...) as its default export'), { code: 'ORDERLY_E_MANIFEST_INVALID' });
  }
  return candidate as BotDefinition;
}

const NO_BROWSER = 'this bot declares "browser": false in bot.json: it has no page and takes no screenshots';
/** `ctx.page` of a bot without a browser: any use of it says why, instead of failing obscurely. */
const NO_PAGE = new Proxy({} as Page, {
  get(_target, property) {
    if (property === 'then') return undefined; // not a thenable: awaiting it is harmless
    throw new Error(NO_BROWSER);
  },
});

async function ensureBrowser(): Promise<Browser> {
  if (!browser || !browser.isConnected()) browser = await launchChromium(chromiumPath, proxyArgs);
  return browser;
}

// No trace, video or HAR recording: they would hold unmasked PHI.
const CONTEXT_OPTIONS = { acceptDownloads: false, serviceWorkers: 'block' } as const;

/**
 * The run's context and first page, opened while the sandbox warms up: its options are the same
 * for every run, and its one run sets its routes before the page goes anywhere.
 */
let prepared: Promise<{ context: BrowserContext; page: Page } | undefined> = Promise.resolve(undefined);

async function newContextAndPage(b: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await b.newContext(CONTEXT_OPTIONS);
  return { context, page: await context.newPage() };
}

function prepareContext(b: Browser): void {
  prepared = newContextAndPage(b).catch(() => undefined); // the run opens its own, and reports a failure with a code
}

/** The prepared context and page if the browser that holds them is still up, else new ones. */
async function openContext(b: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const ready = await prepared;
  if (ready && ready.context.browser() === b && b.isConnected()) return ready;
  await ready?.context.close().catch(() => undefined);
  return newContextAndPage(b);
}

let egressFetch: typeof fetch = () => Promise.reject(new Error('the egress proxy is not open'));

/**
 * The sandbox's network namespace has only its own loopback: a bridge on it leads to the runner's
 * egress proxy, which allows the manifest's hosts only. Chromium, `ctx.fetch`, the global `fetch`
 * and libraries that read HTTP(S)_PROXY all go that way.
 */
async function openEgress(socketPath: string): Promise<void> {
  const bridge = await bridgeLoopbackToSocket(socketPath);
  proxyArgs = chromiumProxyArgs(bridge.port);
  // Child processes and libraries of the bot read these; the host's own config never comes from here.
  Object.assign(process.env, proxyEnvironment(bridge.port)); // eslint-disable-line no-restricted-properties
  egressFetch = createEgressFetch(bridgeProxyUrl(bridge.port));
  globalThis.fetch = egressFetch;
}

/** Errors of the sandbox's file limits (RLIMIT_FSIZE, the tmpfs size), whoever caught them first. */
const FILE_LIMITS: Record<string, 'file-size' | 'tmp-space'> = { EFBIG: 'file-size', ENOSPC: 'tmp-space', EDQUOT: 'tmp-space' };

function toErrorBody(err: unknown, timedOut: boolean, browserLost: boolean): ErrorBody {
  if (err instanceof StepError) return err.body;
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.code === 'ORDERLY_E_BOT_BUSINESS') return errorBody('ORDERLY_E_BOT_BUSINESS', message);
  if (e?.code === 'ORDERLY_E_MANIFEST_INVALID') return errorBody('ORDERLY_E_MANIFEST_INVALID', message);
  const fileLimit = typeof e?.code === 'string' ? FILE_LIMITS[e.code] : undefined;
  if (fileLimit) return limitError(fileLimit);
  if (timedOut) return errorBody('ORDERLY_E_BOT_TIMEOUT', 'the bot ran past its timeout and was aborted');
  // A browser that died is a system failure whatever the bot made of it: retried, on a new browser.
  if (browserLost) return errorBody('ORDERLY_E_BOT_HOST_CRASHED', 'the browser died during the run');
  return errorBody('ORDERLY_E_BOT_FAILED', `${typeof e?.name === 'string' ? e.name : 'Error'}: ${message}`);
}

async function run(request: HostRun): Promise<void> {
  const controller = new AbortController();
  let redactor: Redactor | undefined;
  try {
    // The runner built the same redactor before the run was sent, so this does not fail in practice.
    redactor = createRedactor({ secrets: Object.values(request.secrets), phi: request.phi });
  } catch {
    redactor = undefined;
  }
  active = { runId: request.runId, controller, seq: 0, redactor };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('timeout'));
  }, request.timeoutMs);
  const b = request.browser ? await ensureBrowser().catch((err: Error) => err) : undefined;
  if (b instanceof Error) {
    clearTimeout(timer);
    active = undefined;
    send({ type: 'done', runId: request.runId, ok: false, error: errorBody('ORDERLY_E_BOT_HOST_CRASHED', 'the browser could not be started') });
    return;
  }
  // The browser dying mid-run (crash, OOM kill) ends the run at once as a retryable crash, even if
  // the bot is not touching the page just then; the next run launches a new browser.
  let browserLost = false;
  const onBrowserLost = () => {
    browserLost = true;
    controller.abort(new Error('the browser died'));
  };
  b?.once('disconnected', onBrowserLost);
  const contextStarted = performance.now();
  const opened = b ? await openContext(b).catch((err: unknown) => err as Error) : undefined;
  if (opened instanceof Error) {
    clearTimeout(timer);
    b?.off('disconnected', onBrowserLost);
    active = undefined;
    send({ type: 'done', runId: request.runId, ok: false, error: errorBody('ORDERLY_E_BOT_HOST_CRASHED', 'the browser could not open a context') });
    return;
  }
  const context = opened?.context;
  let shoot: ((name: string) => Promise<void>) | undefined;
  try {
    let page = NO_PAGE;
    if (opened) {
      // Egress allow-list: the bot's browser reaches only the manifest's hosts.
      await opened.context.route('**/*', (route) => (isAllowedUrl(route.request().url(), request.hosts) ? route.continue() : route.abort('blockedbyclient')));
      const contextPage = opened.page;
      page = contextPage;
      // Screenshots are masked here, before the image leaves the host: the run's own values and
      // the PHI shapes decide which text is covered (invariant 4). Their names are the bot's
      // choice (a member id, say), so they are redacted too.
      const shots = redactor ?? createRedactor({ secrets: Object.values(request.secrets), phi: request.phi });
      shoot = async (name: string) => {
        const shot = await maskedScreenshot(contextPage, {
          phiSelectors: request.phiSelectors,
          allowFields: request.screenshotAllowFields,
          isSensitive: (text) => shots.scan(text),
        });
        send({
          type: 'screenshot',
          runId: request.runId,
          name: redactedFileName(shots, String(name)),
          png: Buffer.from(shot.png).toString('base64'),
          failedClosed: shot.failedClosed,
        });
      };
    }
    const bot = loadBot(request.code, `${request.botName}.bot.js`);
    const log = botLogger();
    const ctx: BotContext = {
      page,
      input: request.input,
      log,
      signal: controller.signal,
      idempotencyKey: request.idempotencyKey,
      runId: request.runId,
      attempt: request.attempt,
      secrets: Object.freeze({ ...request.secrets }),
      fetch: egressFetch,
      screenshot: (name) => (shoot ? shoot(name) : Promise.reject(new Error(NO_BROWSER))),
      step: createStepRunner(stepRpc(request.runId, controller)),
    };
    send({ type: 'started', runId: request.runId, contextMs: performance.now() - contextStarted });
    // An abort (cancel, timeout, a lost browser) may have come while the context was opening.
    const aborted = new Promise<never>((_, reject) => {
      if (controller.signal.aborted) reject(controller.signal.reason as Error);
      else controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true });
    });
    const result = await Promise.race([bot.run(ctx), aborted]);
    const serialised = JSON.stringify(result ?? null);
    if (serialised.length > 256 * 1024) throw new Error('the bot result is over 256 KiB');
    flushRawOutput();
    send({ type: 'done', runId: request.runId, ok: true, result: JSON.parse(serialised) as unknown });
  } catch (err) {
    // The page as the run failed, masked like any other screenshot; best effort.
    if (shoot && b?.isConnected() && !timedOut) await shoot('failure').catch(() => undefined);
    flushRawOutput();
    const error = toErrorBody(err, timedOut, browserLost || (b !== undefined && !b.isConnected()));
    send({ type: 'done', runId: request.runId, ok: false, error: { ...error, message: fitted(error.message) } });
  } finally {
    clearTimeout(timer);
    b?.off('disconnected', onBrowserLost);
    active = undefined;
    // A step call still waiting belongs to this run only: it is answered with nothing, never later.
    for (const [id, pending] of stepCalls) if (pending.runId === request.runId) stepCalls.delete(id);
    await context?.close().catch(() => undefined);
  }
}

function onRunnerMessage(raw: unknown): void {
  const parsed = ToHost.safeParse(raw);
  if (!parsed.success) return;
  const message = parsed.data;
  switch (message.type) {
    case 'init':
      chromiumPath = message.chromiumPath;
      if (message.yieldCpu) yieldWhileWarming();
      openEgress(message.egressSocket)
        .then(ensureBrowser)
        .then(
          (b) => {
            prepareContext(b);
            return prepared.then(() => send({ type: 'ready' }));
          },
          () => send({ type: 'ready' }), // the first run reports the launch failure with a code
        );
      return;
    case 'run':
      if (ran) return;
      ran = true;
      void run(message);
      return;
    case 'abort':
      if (active?.runId === message.runId) active.controller.abort(new Error('aborted'));
      return;
    case 'step-answer': {
      const pending = stepCalls.get(message.id);
      if (!pending || pending.runId !== message.runId) return;
      stepCalls.delete(message.id);
      pending.resolve(message);
      return;
    }
  }
}
