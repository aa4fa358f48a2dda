import type { BatchView } from '@orderly/shared';
import { progressBar, progressLine, watchBatch } from './batch';

const view = (done: number, total = 4, state: BatchView['state'] = 'open'): BatchView => ({
  id: '00000000-0000-4000-8000-0000000000b1',
  state,
  bot: 'eligibility-check',
  version: '1.0.0',
  segment: 'demo',
  keyColumn: null,
  createdBy: 'admin',
  createdAt: '2026-01-01T00:00:00.000Z',
  progress: {
    total,
    done,
    percent: Math.floor((done / total) * 1000) / 10,
    counts: { waiting: total - done, active: 0, succeeded: done, failed: 0, dead_lettered: 0, cancelled: 0, discarded: 0 },
  },
});

class Sink {
  text = '';
  constructor(readonly isTTY: boolean) {}
  write = (chunk: string | Uint8Array) => {
    this.text += String(chunk);
    return true;
  };
}

describe('the progress bar', () => {
  test('fills by the share done and is full only at the end', () => {
    expect(progressBar(view(0).progress, 10)).toBe('[..........]');
    expect(progressBar(view(1).progress, 10)).toBe('[##........]');
    expect(progressBar(view(999, 1000).progress, 10)).toBe('[#########.]');
    expect(progressBar(view(4).progress, 10)).toBe('[##########]');
  });

  test('the line names done, percent, a held state and the counts', () => {
    expect(progressLine(view(1, 4, 'paused'))).toBe('  progress [#######.......................] 1/4 done (25 %) paused: waiting 3, succeeded 1');
  });
});

describe('watching a batch', () => {
  const sequence = (...views: BatchView[]) => {
    let i = 0;
    return async () => views[Math.min(i++, views.length - 1)]!;
  };

  test('not on a terminal: a plain line per change, no control characters, ending at 100 %', async () => {
    const out = new Sink(false);
    let t = 0;
    const last = await watchBatch(sequence(view(0), view(0), view(2), view(4)), { intervalMs: 1, out, now: () => (t += 1000) });
    expect(last.progress.done).toBe(4);
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain('0/4 done (0 %)');
    expect(lines[1]).toMatch(/2\/4 done \(50 %\).* items\/s, about \d+ s left$/);
    expect(lines[2]).toContain('[##############################] 4/4 done (100 %)');
    expect(out.text.includes('\r') || out.text.includes('\x1b')).toBe(false);
  });

  test('on a terminal: one line redrawn in place, then a newline', async () => {
    const out = new Sink(true);
    await watchBatch(sequence(view(1), view(4)), { intervalMs: 1, out });
    expect(out.text.match(/\r/g)).toHaveLength(2);
    expect(out.text.endsWith('(100 %): succeeded 4\x1b[K\n')).toBe(true);
  });

  test('--json: one JSON object a line', async () => {
    const out = new Sink(true);
    await watchBatch(sequence(view(3), view(4)), { intervalMs: 1, out, json: true });
    expect(
      out.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).progress.done),
    ).toEqual([3, 4]);
  });
});
