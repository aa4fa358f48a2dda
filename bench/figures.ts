/** Goals by figure key. A key without a goal is a baseline or a breakdown, printed for context. */
export const GOALS: Record<string, { op: '<=' | '>='; target: number }> = {
  run_overhead_ratio: { op: '<=', target: 1.2 },
  run_overhead_ratio_vs_launch: { op: '<=', target: 0.85 },
  enqueue_ratio: { op: '>=', target: 0.25 },
  credential_lease_share: { op: '<=', target: 0.05 },
  redaction_log_ratio: { op: '>=', target: 0.5 },
  // Issue 14: the run path (a redactor holding the run's declared values) must meet it too.
  redaction_log_ratio_with_values: { op: '>=', target: 0.5 },
  redaction_screenshot_added_ms: { op: '<=', target: 50 },
  redaction_screenshot_added_ms_large: { op: '<=', target: 50 },
  pipeline_throughput_ratio: { op: '>=', target: 0.3 },
  checkpoint_p50_ms: { op: '<=', target: 2 },
  console_runs_page_ms: { op: '<=', target: 150 },
};

/** Figures reported in the first part of the table even without a goal. */
const HEADLINE = new Set([
  'run_overhead_ratio_eligibility',
  'run_overhead_ratio_eligibility_bot_steps',
  'sandbox_start_ms',
  'sandbox_throughput_ratio',
  'enqueue_ratio_pglite',
  'dispatch_p50_ms',
  'dispatch_p99_ms',
  'redaction_log_ratio_noop',
  'redaction_log_ratio_cpu',
  'redaction_log_ratio_with_values_cpu',
]);

export function meets(key: string, value: number): boolean | undefined {
  const goal = GOALS[key];
  if (!goal) return undefined;
  return goal.op === '<=' ? value <= goal.target : value >= goal.target;
}

/** The printed table: figures with goals first, then baselines and breakdowns. */
export function table(results: Record<string, number>, errors: Record<string, string>): string {
  const rows: string[][] = [['figure', 'value', 'goal', '']];
  const keys = Object.keys(results);
  const headline = keys.filter((k) => GOALS[k] || HEADLINE.has(k));
  const rest = keys.filter((k) => !headline.includes(k));
  for (const key of headline) {
    const goal = GOALS[key];
    const ok = meets(key, results[key]!);
    rows.push([key, String(results[key]), goal ? `${goal.op} ${goal.target}` : '-', ok === undefined ? '' : ok ? 'met' : 'MISSED']);
  }
  if (rest.length) rows.push(['', '', '', '']);
  for (const key of rest) rows.push([key, String(results[key]), '', '']);
  for (const [name, message] of Object.entries(errors)) rows.push([`(${name})`, 'ERROR', message, '']);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
