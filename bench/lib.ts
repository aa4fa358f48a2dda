/**
 * Small helpers for the bench: order statistics, timing and a cleanup stack. Figures are ratios
 * against a raw baseline measured side by side in the same process run, never absolute limits.
 */

/** Value at quantile `q` (0..1) with linear interpolation between order statistics. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export const median = (samples: readonly number[]): number => quantile(samples, 0.5);

export const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

/** Milliseconds since `start` (a `performance.now()` reading). */
export const since = (start: number): number => performance.now() - start;

/** Progress on stderr, so stdout keeps only the table. */
export function note(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** Closes what the bench opened, last first; every step runs even if an earlier one fails. */
export class Cleanup {
  private readonly steps: { what: string; fn: () => Promise<unknown> }[] = [];

  add(what: string, fn: () => Promise<unknown>): void {
    this.steps.push({ what, fn });
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      await step.fn().catch((err: unknown) => note(`cleanup of ${step.what} failed: ${err instanceof Error ? err.message : String(err)}`));
    }
  }
}

/** Rejects after `ms`, so a lost event fails one measurement instead of hanging the bench. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
