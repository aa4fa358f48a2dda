/**
 * Delay before retry number `failures` (1 = after the first failure): exponential from `baseMs`,
 * capped at `maxMs`, with jitter (50-100 % of the step) so that many control rooms or many alerts
 * failing together do not retry in lockstep. Past the cap it stays at the cap: an alert is retried
 * forever, never dropped.
 */
export function retryDelayMs(failures: number, options: { baseMs: number; maxMs: number }, random: () => number = Math.random): number {
  const step = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(step * (0.5 + random() / 2));
}
