import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO } from './harness';
import { shortTimeouts } from './test-timeouts';

/** Integration and end-to-end test files of the repository (not dependencies, not builds). */
function integrationTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.') ? [] : integrationTests(path);
    return /\.(int|e2e)\.test\.ts$/.test(entry.name) ? [path] : [];
  });
}

test("every integration test's timeout exceeds the sum of the waits inside it, with margin", () => {
  const files = ['control-room', 'runner', 'shared', 'test', 'bots', 'dev-vault'].flatMap((d) => integrationTests(join(REPO, d)));
  expect(files.length).toBeGreaterThan(20);
  const short = files.flatMap((file) =>
    shortTimeouts(file).map((f) => `${relative(REPO, file)}:${f.line} timeout ${f.timeoutMs} < waits ${f.waitsMs} + margin: ${f.name}`),
  );
  expect(short).toEqual([]);
});

test('the check finds a test whose waits outlast its timeout', () => {
  const findings = shortTimeouts(join(REPO, 'test', 'fixtures', 'short-timeout.sample.ts'));
  expect(findings.map((f) => ({ line: f.line, timeoutMs: f.timeoutMs, waitsMs: f.waitsMs }))).toEqual([{ line: 5, timeoutMs: 60_000, waitsMs: 75_000 }]);
});
