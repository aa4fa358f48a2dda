import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentName } from '@orderly/shared';
import { loadOrCreateSecrets, runnerSigningKeyPath, runnerTokenPath } from './secrets';

const segments = ['demo', 'other'] as SegmentName[];
const dirs: string[] = [];
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-secrets-'));
  dirs.push(dir);
  return join(dir, 'secrets');
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test('development: each segment gets a bootstrap runner token and a 0600 report-signing key, stable across restarts', () => {
  const dir = fresh();
  const first = loadOrCreateSecrets(dir, segments);
  for (const segment of segments) {
    expect(statSync(runnerSigningKeyPath(dir, segment)).mode & 0o777).toBe(0o600);
    expect(statSync(runnerTokenPath(dir, segment)).mode & 0o777).toBe(0o600);
  }
  expect([...first.runnerPublicKeys.keys()]).toEqual(segments);
  const again = loadOrCreateSecrets(dir, segments);
  expect(again.runnerPublicKeys.get(segments[0]!)!.equals(first.runnerPublicKeys.get(segments[0]!)!)).toBe(true);
});

test('production (bootstrapRunners: false) neither writes nor honours bootstrap runner credentials', () => {
  const dir = fresh();
  const secrets = loadOrCreateSecrets(dir, segments, { bootstrapRunners: false });
  expect(secrets.runnerTokenHashes.size).toBe(0);
  expect(secrets.runnerPublicKeys.size).toBe(0);
  for (const segment of segments) expect(existsSync(runnerTokenPath(dir, segment)) || existsSync(runnerSigningKeyPath(dir, segment))).toBe(false);
  // Files left by an earlier development start are not honoured either.
  const dev = fresh();
  loadOrCreateSecrets(dev, segments);
  expect(loadOrCreateSecrets(dev, segments, { bootstrapRunners: false }).runnerTokenHashes.size).toBe(0);
});
