/**
 * `make bench`: Orderly's overhead as ratios against raw baselines measured side by side in this
 * same process run (raw Playwright, raw BullMQ, plain pino), never as absolute timings. Prints a table and
 * writes bench/results.json (one object, keys naming the figures). A missed goal is reported; only
 * a crash (a measurement that could not be taken) exits non-zero. Stacks, databases and browsers
 * are closed and dropped on every path.
 *
 * To add a figure: write a Measurement (see context.ts) and append it to MEASUREMENTS; give its
 * key a goal in figures.ts if it has one. `tsx bench/run.ts enqueue` runs only the measurements
 * whose name contains one of the words given (results.json then holds only their figures).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchContext, Measurement } from './context';
import { dispatch } from './dispatch';
import { enqueuePglite, enqueuePostgres } from './enqueue';
import { GOALS, meets, table } from './figures';
import { Cleanup, note, since } from './lib';
import { checkpoint } from './checkpoint';
import { credentialLease } from './credential-lease';
import { redactionLogs, redactionScreenshot } from './redaction';
import { pipelineThroughput } from './pipeline';
import { runOverhead } from './run-overhead';
import { sandboxCost } from './sandbox';
import { consoleRunsPage } from './console';

/** Run in this order; a shared stack closes right after the last measurement that uses it. */
// Log throughput first, while nothing else is open. Then enqueue: a closing runner stack
// (Chromium exiting, its database dropped) would weigh on the next measurement for a while. The
// credential lease uses the idle PostgreSQL stack of the enqueue measurement, after both enqueues;
// the masked screenshot comes last, after the runner stack has closed.
const ALL: readonly Measurement[] = [
  redactionLogs,
  enqueuePostgres,
  enqueuePglite,
  credentialLease,
  runOverhead,
  sandboxCost,
  dispatch,
  checkpoint,
  redactionScreenshot,
  pipelineThroughput,
  consoleRunsPage,
];
/** Pause after a shared stack closes, so its teardown does not run into the next measurement. */
const SETTLE_MS = 1000;
const only = process.argv.slice(2).map((w) => w.toLowerCase());
const MEASUREMENTS = only.length ? ALL.filter((m) => only.some((w) => m.name.toLowerCase().includes(w))) : ALL;

const RESULTS_FILE = join(__dirname, 'results.json');

async function main(): Promise<number> {
  const started = performance.now();
  const cleanup = new Cleanup();
  const ctx = new BenchContext(cleanup);
  const results: Record<string, number> = {};
  const errors: Record<string, string> = {};
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    note(`${signal}: cleaning up`);
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const [i, measurement] of MEASUREMENTS.entries()) {
      const t0 = performance.now();
      note(`${measurement.name}…`);
      try {
        Object.assign(results, await measurement.run(ctx));
      } catch (err) {
        errors[measurement.name] = err instanceof Error ? err.message : String(err);
        note(`${measurement.name} failed: ${errors[measurement.name]}`);
        for (const line of await ctx.recentProblems()) note(`  logged: ${line.slice(0, 600)}`);
      }
      note(`${measurement.name} took ${(since(t0) / 1000).toFixed(1)} s`);
      const later = MEASUREMENTS.slice(i + 1);
      const done = measurement.uses.filter((name) => !later.some((m) => m.uses.includes(name)));
      for (const name of done) await ctx.release(name);
      if (done.length && later.length) await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    }
  } finally {
    await cleanup.run();
  }
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\n${table(results, errors)}\n\n`);
  const missed = Object.keys(GOALS).filter((k) => k in results && meets(k, results[k]!) === false);
  note(`${missed.length ? `goal missed: ${missed.join(', ')}; ` : ''}wrote ${RESULTS_FILE} in ${(since(started) / 1000).toFixed(1)} s total`);
  return Object.keys(errors).length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
