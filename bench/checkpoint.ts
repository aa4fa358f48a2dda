import { join } from 'node:path';
import { REPO } from '../test/harness';
import type { Measurement } from './context';
import { median, note, quantile, round } from './lib';

const STEP_LOOP_BOT = join(REPO, 'test', 'fixtures', 'bots', 'step-loop');
const STEPS = 300;
/** The first steps of a run warm the connections and JIT; they are left out. */
const WARMUP = 20;

/**
 * checkpoint_p50_ms: one checkpointed step end to end, as bot code sees it: `ctx.step` asks the
 * runner over IPC, the runner asks the control room (begin), the step body runs (trivial), the
 * result is sealed and recorded (complete), and the answer comes back. Measured inside the bot.
 */
export const checkpoint: Measurement = {
  name: 'step checkpoint',
  uses: ['runnerStack'],
  async run(ctx) {
    const { stack } = await ctx.get('runnerStack');
    await stack.publish(STEP_LOOP_BOT);
    const created = await stack.startRun({ bot: 'step-loop', input: { steps: STEPS } });
    const run = await stack.waitForRun(created.id, undefined, 120_000);
    if (run.status !== 'succeeded') throw new Error(`step-loop run ended ${run.status} ${run.error?.code ?? ''}`);
    const samples = (run.result as { stepMs: number[] }).stepMs.slice(WARMUP);
    note(`checkpoint: p50 ${median(samples).toFixed(2)} ms, p99 ${quantile(samples, 0.99).toFixed(2)} ms over ${samples.length} steps`);
    return { checkpoint_p50_ms: round(median(samples), 2), checkpoint_p99_ms: round(quantile(samples, 0.99), 2) };
  },
};
