/**
 * `make soak` (issue 12): for SOAK_MINUTES (15 unless set), a stream of browser runs with a side
 * effect (the ledger bot) and no-browser runs, while random real faults strike every few seconds:
 * a runner SIGKILLed, the control room SIGKILLed, Redis SIGKILLed and restarted from its
 * append-only file, the database link cut. Then the faults stop, every run is given time to end,
 * and the figures are printed and written to bench/soak.json.
 *
 * Goal: lost 0 (a run the API accepted and no longer knows, or a succeeded ledger run whose side
 * effect never happened), duplicated 0 (a side effect recorded twice), stuck 0 (not ended after
 * the drain). Exits 1 when the goal is missed. Outside `make test`: it takes as long as it says.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTerminal, RunView } from '@orderly/shared';
import { CuttableLink, Ledger, OwnRedis, startLedger, startOwnRedis, throughCuttableLink } from '../test/faults';
import { BIN, REPO, runnerProcessEnv, Stack, startStack } from '../test/harness';

const MINUTES = Number(process.env.SOAK_MINUTES ?? '15');
/** Mean seconds between faults (each gap is uniform in [0.5, 1.5] × this). */
const FAULT_EVERY_S = Number(process.env.SOAK_FAULT_EVERY_S ?? '8');
/** Mean seconds between new runs. */
const RUN_EVERY_S = Number(process.env.SOAK_RUN_EVERY_S ?? '1.5');
const RUNNERS = 2;
/** After the faults stop, how long every run gets to end before it counts as stuck. */
const DRAIN_MS = 5 * 60_000;
const LEDGER_BOT = join(REPO, 'test', 'fixtures', 'bots', 'ledger');
const NO_BROWSER_BOT = join(REPO, 'test', 'fixtures', 'bots', 'no-browser');
/** A dead runner's job is found within seconds: lock 2 s, stall check every second. */
const FAST_TAKEOVER = { ORDERLY_JOB_LOCK_MS: '2000', ORDERLY_STALLED_INTERVAL_MS: '1000' };

type Fault = 'runner killed' | 'control room killed' | 'redis restarted' | 'database cut';
const FAULTS: Fault[] = ['runner killed', 'control room killed', 'redis restarted', 'database cut'];

interface Created {
  id: string;
  bot: 'ledger' | 'no-browser';
  key: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const jitter = (meanS: number) => meanS * 1000 * (0.5 + Math.random());

class RunnerProcess {
  private child: ChildProcess | undefined;
  constructor(
    private readonly stack: Stack,
    private readonly redisUrl: string,
    private readonly id: string,
  ) {}

  start(): void {
    this.child = spawn(join(BIN, 'orderly'), ['runner', 'start', '--segment', 'demo'], {
      env: runnerProcessEnv(this.stack, this.id, { REDIS_URL: this.redisUrl, ...FAST_TAKEOVER }),
      cwd: this.stack.dataDir,
      stdio: 'ignore',
      // A process group of its own, so SIGKILL reaches the runner and its sandboxes as a crash would.
      detached: true,
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child?.pid || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }
}

async function main(): Promise<void> {
  const ledger: Ledger = await startLedger();
  const redis: OwnRedis = await startOwnRedis({ appendfsync: 'everysec' });
  let link: CuttableLink | undefined;
  const stack = await startStack({
    redisUrl: redis.url,
    vault: false,
    controlRoomProcess: true,
    logLevel: 'info',
    // An attempt whose job or report a Redis restart lost is recovered within seconds, well inside the drain.
    controlRoomEnv: { ORDERLY_LOST_ATTEMPT_SWEEP_SECONDS: '5' },
    mapDatabaseUrl: throughCuttableLink((l) => (link = l)),
  });
  const runners = Array.from({ length: RUNNERS }, (_, i) => new RunnerProcess(stack, redis.url, `soak-runner-${i + 1}`));
  const created: Created[] = [];
  const faults: Record<Fault, number> = { 'runner killed': 0, 'control room killed': 0, 'redis restarted': 0, 'database cut': 0 };
  let refusedCreates = 0;
  try {
    await stack.publish(LEDGER_BOT);
    await stack.publish(NO_BROWSER_BOT);
    for (const runner of runners) runner.start();

    const endAt = Date.now() + MINUTES * 60_000;
    const startedAt = Date.now();
    process.stdout.write(`soak: ${MINUTES} min, a fault every ~${FAULT_EVERY_S} s, a run every ~${RUN_EVERY_S} s, ${RUNNERS} runners\n`);

    // A client as the README describes one: a refused or unanswered create is sent again with the
    // same idempotency key until the control room accepts it (it then exists exactly once).
    const createOnce = async (n: number) => {
      const bot = n % 3 === 0 ? 'no-browser' : 'ledger';
      const key = `soak-${n}`;
      const input = bot === 'ledger' ? { ledgerUrl: ledger.url, verify: true } : {};
      for (;;) {
        const res = await stack.api('POST', '/v1/runs', { bot, input, idempotencyKey: key }).catch(() => ({ status: 0, body: undefined }));
        if (res.status === 201 || res.status === 200) {
          created.push({ id: (res.body as RunView).id, bot, key });
          return;
        }
        refusedCreates++;
        await sleep(1000);
      }
    };
    const creating = (async () => {
      const pending: Promise<void>[] = [];
      for (let n = 1; Date.now() < endAt; n++) {
        pending.push(createOnce(n));
        await sleep(jitter(RUN_EVERY_S));
      }
      await Promise.all(pending);
    })();

    const striking = (async () => {
      while (Date.now() < endAt) {
        await sleep(jitter(FAULT_EVERY_S));
        if (Date.now() >= endAt) break;
        const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)]!;
        faults[fault]++;
        process.stdout.write(`  ${Math.round((Date.now() - startedAt) / 1000)} s: ${fault}\n`);
        if (fault === 'runner killed') {
          const runner = runners[Math.floor(Math.random() * runners.length)]!;
          await runner.kill();
          await sleep(2000);
          runner.start();
        } else if (fault === 'control room killed') {
          await stack.controlRoomProcess!.kill();
          await sleep(2000);
          await stack.controlRoomProcess!.start();
        } else if (fault === 'redis restarted') {
          await redis.kill();
          await sleep(1000);
          await redis.start();
        } else {
          link!.cut();
          await sleep(3000);
          link!.restore();
        }
      }
    })();
    await Promise.all([creating, striking]);

    process.stdout.write(`soak: faults stopped; waiting up to ${DRAIN_MS / 60_000} min for ${created.length} runs to end\n`);
    const drainUntil = Date.now() + DRAIN_MS;
    let final = new Map<string, RunView | undefined>();
    for (;;) {
      final = new Map();
      for (const run of created) {
        const res = await stack.api('GET', `/v1/runs/${run.id}`).catch(() => ({ status: 0, body: undefined }));
        final.set(run.id, res.status === 200 ? (res.body as RunView) : undefined);
      }
      const open = [...final.values()].filter((r) => r && !isTerminal(r.status) && r.status !== 'dead_lettered').length;
      if (open === 0 || Date.now() > drainUntil) break;
      await sleep(5000);
    }

    const counts = ledger.counts();
    const status = (s: string) => [...final.values()].filter((r) => r?.status === s).length;
    const lostRuns = created.filter((c) => final.get(c.id) === undefined);
    const lostEffects = created.filter((c) => c.bot === 'ledger' && final.get(c.id)?.status === 'succeeded' && !counts[c.key]);
    const duplicated = Object.entries(counts).filter(([, n]) => n > 1);
    const stuck = [...final.values()].filter((r) => r && !isTerminal(r.status) && r.status !== 'dead_lettered');
    const figures = {
      minutes: MINUTES,
      runners: RUNNERS,
      faults,
      runs_created: created.length,
      creates_refused_and_retried: refusedCreates,
      succeeded: status('succeeded'),
      failed: status('failed'),
      dead_lettered: status('dead_lettered'),
      cancelled: status('cancelled'),
      lost: lostRuns.length + lostEffects.length,
      duplicated: duplicated.length,
      stuck: stuck.length,
      goal: 'lost 0, duplicated 0, stuck 0',
      met: lostRuns.length + lostEffects.length === 0 && duplicated.length === 0 && stuck.length === 0,
      failures: [...final.values()]
        .filter((r) => r && r.status !== 'succeeded')
        .reduce<Record<string, number>>((acc, r) => {
          const code = `${r!.status} ${r!.error?.code ?? ''}`.trim();
          acc[code] = (acc[code] ?? 0) + 1;
          return acc;
        }, {}),
      stuck_states: stuck.map((r) => r!.status),
    };
    writeFileSync(join(__dirname, 'soak.json'), `${JSON.stringify(figures, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\nwritten to bench/soak.json\n`);
    if (!figures.met) process.exitCode = 1;
  } finally {
    for (const runner of runners) await runner.kill();
    link?.restore();
    if (!redis.running) await redis.start();
    await stack.close();
    await redis.close();
    await link?.close();
    await ledger.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 2;
});
