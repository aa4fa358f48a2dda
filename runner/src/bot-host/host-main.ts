/**
 * The bot host: a long-lived child process of the runner that executes bot code. It is started
 * with an empty environment and, when the runner is root, as an unprivileged user, so bot code
 * cannot read the runner's Redis URL, token or key files (not from its environment, not from
 * /proc/<runner>/environ, not from disk). It keeps one warm Chromium and gives every run a fresh
 * browser context. Bot modules are evaluated afresh per run, so module state does not carry
 * from one run to the next.
 */
import { createRequire, isBuiltin } from 'node:module';
import { format } from 'node:util';
import vm from 'node:vm';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { createRedactor, ErrorBody, LogLine } from '@orderly/shared';
import type { BotContext, BotDefinition } from '@orderly/shared/sdk';
import { isAllowedUrl, launchChromium } from '../browser/launch';
import { maskedScreenshot } from '../browser/masked-screenshot';
import { FromHost, HostRun, HostStepAnswer, StepCall, ToHost } from './protocol';
import { createStepRunner, StepError } from './steps';

let chromiumPath = '';
let browser: Browser | undefined;
let active: { runId: string; controller: AbortController; seq: number } | undefined;
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
        resolve({ type: 'step-answer', runId, id: 0, ok: false, error: { code: 'ORDERLY_E_ATTEMPT_STALE', message: 'this run has ended', retryable: false, details: {} } });
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

function send(message: FromHost): void {
  process.send?.(message);
}

/** Every line the bot writes, through ctx.log, console or stdout, goes to the runner, tagged with the run. */
function emit(level: LogLine['level'], source: LogLine['source'], msg: string): void {
  if (!active) return;
  send({ type: 'log', runId: active.runId, line: { seq: active.seq++, at: new Date().toISOString(), level, source, msg: msg.slice(0, 4000) } });
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
for (const [method, level] of [['log', 'info'], ['info', 'info'], ['debug', 'debug'], ['warn', 'warn'], ['error', 'error']] as const) {
  console[method] = (...args: unknown[]) => emit(level, 'console', format(...args));
}
for (const stream of [process.stdout, process.stderr]) {
  stream.write = ((chunk: string | Uint8Array) => {
    emit('info', 'console', typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof stream.write;
}

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
  if (!browser || !browser.isConnected()) browser = await launchChromium(chromiumPath);
  return browser;
}

function toErrorBody(err: unknown, timedOut: boolean, browserLost: boolean): ErrorBody {
  if (err instanceof StepError) return err.body;
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.code === 'ORDERLY_E_BOT_BUSINESS') return { code: 'ORDERLY_E_BOT_BUSINESS', message, retryable: false, details: {} };
  if (e?.code === 'ORDERLY_E_MANIFEST_INVALID') return { code: 'ORDERLY_E_MANIFEST_INVALID', message, retryable: false, details: {} };
  if (timedOut) return { code: 'ORDERLY_E_BOT_TIMEOUT', message: 'the bot ran past its timeout and was aborted', retryable: true, details: {} };
  // A browser that died is a system failure whatever the bot made of it: retried, on a new browser.
  if (browserLost) return { code: 'ORDERLY_E_BOT_HOST_CRASHED', message: 'the browser died during the run', retryable: true, details: {} };
  return { code: 'ORDERLY_E_BOT_FAILED', message: `${typeof e?.name === 'string' ? e.name : 'Error'}: ${message}`, retryable: true, details: {} };
}

async function run(request: HostRun): Promise<void> {
  const controller = new AbortController();
  active = { runId: request.runId, controller, seq: 0 };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('timeout'));
  }, request.timeoutMs);
  const b = request.browser ? await ensureBrowser().catch((err: Error) => err) : undefined;
  if (b instanceof Error) {
    clearTimeout(timer);
    active = undefined;
    send({ type: 'done', runId: request.runId, ok: false, error: { code: 'ORDERLY_E_BOT_HOST_CRASHED', message: 'the browser could not be started', retryable: true, details: {} } });
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
  // No trace, video or HAR recording: they would hold unmasked PHI.
  const context = b ? await b.newContext({ acceptDownloads: false, serviceWorkers: 'block' }).catch((err: unknown) => err as Error) : undefined;
  if (context instanceof Error) {
    clearTimeout(timer);
    b?.off('disconnected', onBrowserLost);
    active = undefined;
    send({ type: 'done', runId: request.runId, ok: false, error: { code: 'ORDERLY_E_BOT_HOST_CRASHED', message: 'the browser could not open a context', retryable: true, details: {} } });
    return;
  }
  let shoot: ((name: string) => Promise<void>) | undefined;
  try {
    let page = NO_PAGE;
    if (context) {
      // Egress allow-list: the bot's browser reaches only the manifest's hosts.
      await context.route('**/*', (route) => (isAllowedUrl(route.request().url(), request.hosts) ? route.continue() : route.abort('blockedbyclient')));
      const contextPage = await context.newPage();
      page = contextPage;
      // Screenshots are masked here, before the image leaves the host: the run's own values and
      // the PHI shapes decide which text is covered (invariant 4).
      const redactor = createRedactor({ secrets: Object.values(request.secrets), phi: request.phi });
      shoot = async (name: string) => {
        const shot = await maskedScreenshot(contextPage, { phiSelectors: request.phiSelectors, allowFields: request.screenshotAllowFields, isSensitive: (text) => redactor.scan(text) });
        send({ type: 'screenshot', runId: request.runId, name, png: new Uint8Array(shot.png), failedClosed: shot.failedClosed });
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
    send({ type: 'done', runId: request.runId, ok: true, result: JSON.parse(serialised) as unknown });
  } catch (err) {
    // The page as the run failed, masked like any other screenshot; best effort.
    if (shoot && b?.isConnected() && !timedOut) await shoot('failure').catch(() => undefined);
    send({ type: 'done', runId: request.runId, ok: false, error: toErrorBody(err, timedOut, browserLost || (b !== undefined && !b.isConnected())) });
  } finally {
    clearTimeout(timer);
    b?.off('disconnected', onBrowserLost);
    active = undefined;
    // A step call still waiting belongs to this run only: it is answered with nothing, never later.
    for (const [id, pending] of stepCalls) if (pending.runId === request.runId) stepCalls.delete(id);
    await context?.close().catch(() => undefined);
  }
}

process.on('message', (raw: unknown) => {
  const parsed = ToHost.safeParse(raw);
  if (!parsed.success) return;
  const message = parsed.data;
  switch (message.type) {
    case 'init':
      chromiumPath = message.chromiumPath;
      ensureBrowser().then(
        () => send({ type: 'ready' }),
        () => send({ type: 'ready' }), // the first run reports the launch failure with a code
      );
      return;
    case 'run':
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
});

// The runner's death ends the host (and its browser) too.
process.on('disconnect', () => {
  void (browser?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
