import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMigrations } from './migrations';

describe('migration files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orderly-migrations-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('are the shipped files, numbered from 0001 without a gap, each with a header that says why', () => {
    const migrations = loadMigrations();
    expect(migrations.length).toBeGreaterThanOrEqual(11);
    migrations.forEach((m, i) => {
      expect(m.id).toBe(i + 1);
      expect(m.sql.startsWith('-- ')).toBe(true);
    });
  });

  it('load in numeric order', () => {
    writeFileSync(join(dir, '0002_second.sql'), '-- b\nSELECT 2;');
    writeFileSync(join(dir, '0001_first.sql'), '-- a\nSELECT 1;');
    expect(loadMigrations(dir).map((m) => m.name)).toEqual(['first', 'second']);
  });

  it('refuse a gap in the numbering', () => {
    writeFileSync(join(dir, '0001_first.sql'), 'SELECT 1;');
    writeFileSync(join(dir, '0003_third.sql'), 'SELECT 3;');
    expect(() => loadMigrations(dir)).toThrow(/expected 0002, found 0003_third/);
  });

  it('refuse a file not named NNNN_name.sql', () => {
    writeFileSync(join(dir, '0001_first.sql'), 'SELECT 1;');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    expect(() => loadMigrations(dir)).toThrow(/notes.txt is not named/);
  });
});
