import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Source checks (issue 13): `runs/outcome.ts` is the only writer of a run's status, and
 * `dlq/dead-letter.ts` the only way a run becomes dead-lettered (state, alert, DLQ entry).
 */
const SRC = join(__dirname, '..');

function sources(dir = SRC): { file: string; text: string }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    if (!entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) return [];
    return [{ file: relative(SRC, path), text: readFileSync(path, 'utf8') }];
  });
}

/** The SET clauses of `UPDATE runs` statements in `text`. */
function runUpdateSets(text: string): string[] {
  return [...text.matchAll(/UPDATE\s+runs\b(?:\s+(?!SET\b)\w+)?\s+SET\s+([\s\S]*?)(?=\bWHERE\b|\bFROM\b|\bRETURNING\b|`|'|")/g)].map((m) => m[1]!);
}
const writesStatus = (text: string) => runUpdateSets(text).some((set) => /(^|[\s,])status\s*=/.test(set));
const filesWhere = (test: (text: string) => boolean) =>
  sources()
    .filter((s) => test(s.text))
    .map((s) => s.file)
    .sort();

test('the checks see what they look for', () => {
  expect(writesStatus("`UPDATE runs SET status = 'dead_lettered', updated_at = now() WHERE id = $1`")).toBe(true);
  expect(writesStatus('`UPDATE runs r SET status = $2 FROM prev WHERE r.id = prev.id`')).toBe(true);
  expect(writesStatus("`UPDATE runs SET enqueued_at = now() WHERE id = $1 AND status = 'dead_lettered'`")).toBe(false);
  expect(writesStatus("'UPDATE runs SET idempotency_key = idempotency_key || id::text WHERE status = ANY($2)'")).toBe(false);
  expect(sources().length).toBeGreaterThan(50);
});

test("only runs/outcome.ts writes a run's status", () => {
  expect(filesWhere(writesStatus)).toEqual([join('runs', 'outcome.ts')]);
});

test('only dlq/dead-letter.ts moves a run to the dead letters, raises its alert and adds its DLQ entry', () => {
  // The outcome that moves a run there: defined in outcome.ts, called from dead-letter.ts alone.
  expect(filesWhere((t) => /\bmoveToDeadLetters\s*\(/.test(t))).toEqual([join('dlq', 'dead-letter.ts'), join('runs', 'outcome.ts')]);
  // The alert: defined in the outbox, raised from dead-letter.ts alone.
  expect(filesWhere((t) => /\.deadLettered\s*\(/.test(t))).toEqual([join('dlq', 'dead-letter.ts')]);
  // The `orderly.dlq.<segment>` entry: added by dead-letter.ts alone (dlq.ts only removes entries).
  expect(filesWhere((t) => /dlqQueueName\([^)]*\)\)\s*\.add\(|\.add\(\s*['"]dead-letter['"]|\.add\(DLQ_JOB_NAME/.test(t))).toEqual([
    join('dlq', 'dead-letter.ts'),
  ]);
  // No status 'dead_lettered' is set outside outcome.ts (which sets it only for dead-letter.ts).
  const literal = filesWhere((t) => runUpdateSets(t).some((set) => set.includes("'dead_lettered'")) || /status:\s*'dead_lettered'\s*,\s*attempt/.test(t));
  expect(literal).toEqual([]);
});
