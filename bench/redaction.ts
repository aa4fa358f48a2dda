import pino, { DestinationStream, Logger, LoggerOptions } from 'pino';
import type { Page } from 'playwright-core';
import { startDemoPortal } from '@orderly/demo-portal';
import { maskedScreenshot } from '@orderly/runner/dist/browser/masked-screenshot';
import { createLogger, createRedactingStream, createRedactor, DeclaredPhi, REDACT_PATHS } from '@orderly/shared';
import { PORTAL_CREDENTIALS } from '../test/harness';
import type { Measurement } from './context';
import { median, note, round, since } from './lib';
import { launchWarmBrowser } from './raw-playwright';
import { MEMBER } from './stacks';

const PHI: DeclaredPhi[] = [
  { field: 'memberId', value: MEMBER.memberId },
  { field: 'dateOfBirth', value: MEMBER.dateOfBirth },
];
const SECRETS = [PORTAL_CREDENTIALS.username, PORTAL_CREDENTIALS.password];

// ---------------------------------------------------------------------------------------------
// redaction_log_ratio

const LINES = 20_000;
const ROUNDS = 7;
/** Lines per run: each run logs through its own child logger (runId bindings), as the runner does. */
const LINES_PER_RUN = 25;

/** The process logger's options (shared/src/logging/logger.ts) without any redaction: plain pino. */
const PLAIN_OPTIONS: LoggerOptions = {
  name: 'bench',
  level: 'info',
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
};

/** A realistic mix: constant messages, a few fields, some holding ids and dates (and declared values). */
function logRun(root: Logger, run: number, lines: number): void {
  const log = root.child({ runId: `run_01J${String(100000 + run)}ABCDEFGHJK`, bot: 'eligibility-check', attempt: 1 });
  for (let i = 0; i < lines; i++) {
    switch (i % 6) {
      case 0:
        log.info({ step: 'goto', durationMs: 120 + (i % 37) }, 'step completed');
        break;
      case 1:
        log.info({ step: 'fill', selector: '#member-id', durationMs: 8 + (i % 5) }, 'step completed');
        break;
      case 2:
        log.info({ member: MEMBER.memberId, birthDate: MEMBER.dateOfBirth }, 'member looked up');
        break;
      case 3:
        log.info({ claim: `CLM-2024-${String(10000 + run)}`, serviceDate: '2024-03-15', amountCents: 12500 }, 'claim found');
        break;
      case 4:
        log.info({ coverage: 'Active', plan: 'Demo Gold PPO', status: 200 }, 'eligibility checked');
        break;
      default:
        log.warn({ status: 503, retryInMs: 250, attempt: 2 }, 'portal answered with an error');
    }
  }
}

/** Lines per second of wall time, and per second of this process's CPU time (what a loaded machine disturbs less). */
function linesPerSecond(logger: Logger, runOffset: number): { wall: number; cpu: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let done = 0, run = runOffset; done < LINES; done += LINES_PER_RUN, run++) logRun(logger, run, Math.min(LINES_PER_RUN, LINES - done));
  const cpu = process.cpuUsage(c0);
  return { wall: LINES / (since(t0) / 1000), cpu: LINES / ((cpu.user + cpu.system) / 1e6) };
}

/**
 * redaction_log_ratio: log lines per second through the full redaction path (the process logger
 * of createLogger: pino's censored paths and the pattern layer on every line) against plain pino
 * to the same destination, rounds interleaved, ratio of medians. `_with_values`: a run's redactor
 * holding its declared secrets and PHI as well. Headline on /dev/null (a write per line, as a
 * synchronous file destination does); `_noop` on a destination that does nothing.
 */
export const redactionLogs: Measurement = {
  name: 'redaction log throughput',
  uses: [],
  async run() {
    const devNull = pino.destination({ dest: '/dev/null', sync: true });
    const noop: DestinationStream = { write() {} };
    try {
      const variants = (dest: DestinationStream) => ({
        plain: pino(PLAIN_OPTIONS, dest),
        full: createLogger({ level: 'info', name: 'bench' }, dest),
        withValues: pino(
          { ...PLAIN_OPTIONS, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } },
          createRedactingStream(dest, createRedactor({ secrets: SECRETS, phi: PHI }), { name: 'bench' }),
        ),
      });
      const loggers = { devnull: variants(devNull), noop: variants(noop) };
      type Key = `${keyof typeof loggers}.${'plain' | 'full' | 'withValues'}`;
      const order: Key[] = [];
      for (const dest of ['devnull', 'noop'] as const) for (const v of ['plain', 'full', 'withValues'] as const) order.push(`${dest}.${v}`);
      const samples = new Map<Key, number[]>(order.map((k) => [k, []]));
      const cpuSamples = new Map<Key, number[]>(order.map((k) => [k, []]));
      let run = 0;
      // Round 0 warms up (JIT, the redactor's edge cache); each later round rotates the order.
      for (let r = 0; r <= ROUNDS; r++) {
        for (let j = 0; j < order.length; j++) {
          const key = order[(j + r) % order.length]!;
          const [dest, variant] = key.split('.') as [keyof typeof loggers, 'plain' | 'full' | 'withValues'];
          const perS = linesPerSecond(loggers[dest][variant], run);
          run += LINES / LINES_PER_RUN;
          if (r > 0) {
            samples.get(key)!.push(perS.wall);
            cpuSamples.get(key)!.push(perS.cpu);
          }
          // Let timers and I/O callbacks run between batches.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const m = (k: Key) => median(samples.get(k)!);
      const mc = (k: Key) => median(cpuSamples.get(k)!);
      note(
        `redaction logs (lines/s, medians of ${ROUNDS}): /dev/null plain ${Math.round(m('devnull.plain'))}, full ${Math.round(m('devnull.full'))}, with values ${Math.round(m('devnull.withValues'))}; ` +
          `no-op plain ${Math.round(m('noop.plain'))}, full ${Math.round(m('noop.full'))}, with values ${Math.round(m('noop.withValues'))}`,
      );
      return {
        redaction_log_ratio: round(m('devnull.full') / m('devnull.plain'), 3),
        redaction_log_ratio_with_values: round(m('devnull.withValues') / m('devnull.plain'), 3),
        // The same ratio in lines per CPU second: on a shared machine (other processes taking the
        // cores) the wall-clock ratio swings by ±0.2 between runs, this one much less.
        redaction_log_ratio_cpu: round(mc('devnull.full') / mc('devnull.plain'), 3),
        redaction_log_ratio_with_values_cpu: round(mc('devnull.withValues') / mc('devnull.plain'), 3),
        redaction_log_ratio_noop: round(m('noop.full') / m('noop.plain'), 3),
        redaction_log_ratio_noop_with_values: round(m('noop.withValues') / m('noop.plain'), 3),
        plain_pino_lines_per_s: Math.round(m('devnull.plain')),
        redacted_lines_per_s: Math.round(m('devnull.full')),
        redacted_with_values_lines_per_s: Math.round(m('devnull.withValues')),
        plain_pino_noop_lines_per_s: Math.round(m('noop.plain')),
      };
    } finally {
      devNull.destroy();
    }
  },
};

// ---------------------------------------------------------------------------------------------
// redaction_screenshot_added_ms

const SHOT_WARMUP = 3;
const SHOTS = 30;

/**
 * redaction_screenshot_added_ms: median of a masked screenshot (the bot host's maskedScreenshot,
 * isSensitive from a run redactor holding the declared PHI) minus median of a plain
 * `page.screenshot()`, interleaved on one page of one warm browser: the demo portal's eligibility
 * form with both PHI fields filled, and a line of text holding them too (as a result page would).
 * `_large`: the same on a page of 2,000+ elements (a table of claims with dates, phones and names).
 */
type ShotOptions = Parameters<typeof maskedScreenshot>[1];

/** Medians of masked and plain screenshots of one page, interleaved after a warm-up. */
async function shotMedians(page: Page, options: ShotOptions, minBoxes: number): Promise<{ masked: number; plain: number }> {
  const masked = async () => {
    const t0 = performance.now();
    const shot = await maskedScreenshot(page, options);
    const ms = since(t0);
    if (shot.failedClosed !== 'none' || shot.maskedBoxes < minBoxes)
      throw new Error(`masked screenshot: failedClosed ${shot.failedClosed}, ${shot.maskedBoxes} boxes`);
    return ms;
  };
  const plain = async () => {
    const t0 = performance.now();
    await page.screenshot();
    return since(t0);
  };
  for (let i = 0; i < SHOT_WARMUP; i++) {
    await masked();
    await plain();
  }
  const maskedMs: number[] = [];
  const plainMs: number[] = [];
  for (let i = 0; i < SHOTS; i++) {
    // Alternate which goes first, so neither always follows the other.
    if (i % 2 === 0) {
      maskedMs.push(await masked());
      plainMs.push(await plain());
    } else {
      plainMs.push(await plain());
      maskedMs.push(await masked());
    }
  }
  return { masked: median(maskedMs), plain: median(plainMs) };
}

export const redactionScreenshot: Measurement = {
  name: 'redaction screenshot',
  uses: [],
  async run() {
    const portal = await startDemoPortal();
    const browser = await launchWarmBrowser().catch(async (err: unknown) => {
      await portal.close();
      throw err;
    });
    try {
      const context = await browser.newContext();
      const page: Page = await context.newPage();
      await page.goto(new URL('/eligibility', portal.url).toString());
      await page.fill('#member-id', MEMBER.memberId);
      await page.fill('#dob', MEMBER.dateOfBirth);
      await page.evaluate((text) => {
        const p = document.createElement('p');
        p.id = 'summary';
        p.textContent = text;
        document.body.append(p);
      }, `Checking member ${MEMBER.memberId}, born ${MEMBER.dateOfBirth}, for coverage on 2024-03-15.`);
      const redactor = createRedactor({ phi: PHI });
      const options = { phiSelectors: [], allowFields: [], isSensitive: (text: string) => redactor.scan(text) };
      // The boxes: two fields, and the member id and the date of birth in the text.
      const small = await shotMedians(page, options, 4);

      // The large page: the same form and a table of 400 rows x 5 cells (2,000 text elements, as a
      // claims or eligibility list would show), one cell in five holding a date, a phone or a name.
      const large: Page = await context.newPage();
      await large.goto(new URL('/eligibility', portal.url).toString());
      await large.fill('#member-id', MEMBER.memberId);
      await large.fill('#dob', MEMBER.dateOfBirth);
      await large.evaluate((member) => {
        const table = document.createElement('table');
        for (let r = 0; r < 400; r++) {
          const row = document.createElement('tr');
          const cells = [
            `CLM-${100000 + r}`,
            r % 3 === 0 ? `Seen by Dr. Okafor on 03/${String((r % 28) + 1).padStart(2, '0')}/2024` : 'Office visit',
            `$${(r * 37) % 900}.00`,
            r % 7 === 0 ? `call (212) 555-${String(1000 + r).slice(-4)}` : 'Paid',
            r === 5 ? member : 'Active',
          ];
          for (const text of cells) {
            const cell = document.createElement('td');
            cell.textContent = text;
            row.append(cell);
          }
          table.append(row);
        }
        document.body.append(table);
      }, MEMBER.memberId);
      const nodes = await large.evaluate(() => document.querySelectorAll('body *').length);
      if (nodes < 2000) throw new Error(`large page: ${nodes} elements, expected 2,000 or more`);
      let scanMs = 0;
      let scans = 0;
      const timed = {
        ...options,
        isSensitive: (text: string) => {
          const t0 = performance.now();
          const spans = redactor.scan(text);
          scanMs += since(t0);
          scans++;
          return spans;
        },
      };
      const big = await shotMedians(large, timed, 100);
      // The redactor's share of the added time: its scans per masked screenshot of the large page.
      const shots = SHOT_WARMUP + SHOTS;
      await context.close();
      note(`redaction screenshot: masked ${small.masked.toFixed(1)} ms, plain ${small.plain.toFixed(1)} ms (medians of ${SHOTS})`);
      note(`redaction screenshot, ${nodes} elements: masked ${big.masked.toFixed(1)} ms, plain ${big.plain.toFixed(1)} ms (medians of ${SHOTS})`);
      return {
        redaction_screenshot_added_ms: round(small.masked - small.plain, 1),
        screenshot_masked_ms: round(small.masked, 1),
        screenshot_plain_ms: round(small.plain, 1),
        redaction_screenshot_added_ms_large: round(big.masked - big.plain, 1),
        screenshot_masked_ms_large: round(big.masked, 1),
        screenshot_plain_ms_large: round(big.plain, 1),
        screenshot_redactor_ms_large: round(scanMs / shots, 1),
        screenshot_redactor_scans_large: Math.round(scans / shots),
      };
    } finally {
      await browser.close().catch(() => undefined);
      await portal.close().catch(() => undefined);
    }
  },
};
