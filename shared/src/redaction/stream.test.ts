import pino from 'pino';
import { REDACT_PATHS } from '../logging/logger';
import { createRedactor, type Detector } from './redactor';
import { createRedactingStream, DROPPED_LINES_MESSAGE } from './stream';

/** pino as the process logger configures it, writing straight to `destination` (no other wrapper). */
function createLogger(options: { level: string; name: string }, destination: pino.DestinationStream): pino.Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** A destination that keeps what it is given. */
function capture(): {
  write(s: string): boolean;
  text(): string;
  lines(): Record<string, unknown>[];
  flushed: number;
  ended: number;
  flush(cb?: () => void): void;
  end(): void;
} {
  const chunks: string[] = [];
  return {
    flushed: 0,
    ended: 0,
    write(s: string) {
      chunks.push(s);
      return true;
    },
    flush(cb) {
      this.flushed++;
      cb?.();
    },
    end() {
      this.ended++;
    },
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

// Fake values only.
const SECRET = 'hvs.FAKEtokenFAKE0123';
const NAME = 'Zorblax McTestface';
const DOB = '1980-01-02';

describe('a real pino logger writing through the redacting stream', () => {
  it('writes valid JSON lines without declared values, secrets or PHI shapes, whatever the level', () => {
    const out = capture();
    const redactor = createRedactor({
      secrets: [SECRET],
      phi: [
        { field: 'name', value: NAME },
        { field: 'dob', value: DOB },
      ],
    });
    const logger = createLogger({ level: 'trace', name: 'runner' }, createRedactingStream(out, redactor)).child({
      runId: '3b241101-e2bb-4255-8caf-4136c566a962',
      bot: 'eligibility-check',
    });

    logger.info({ patient: NAME, dob: '01/02/1980' }, 'eligibility checked');
    logger.debug(`vault token ${SECRET} leased`);
    logger.trace({ url: `https://portal.example.com/e?name=${encodeURIComponent(NAME)}&dob=${DOB}` }, 'navigated');
    logger.warn({ err: new Error(`lookup failed for ${NAME.toUpperCase()}, SSN 123-45-6789`) }, 'step failed');
    logger.error(
      { headers: { authorization: `Bearer ${SECRET}` }, nested: { note: `call 212-555-0101 re ${Buffer.from(NAME).toString('base64')}` } },
      'request failed',
    );
    logger.fatal({ phone: 2125550101 }, 'giving up');

    const text = out.text();
    for (const leaked of [
      SECRET,
      NAME,
      NAME.toUpperCase(),
      DOB,
      '01/02/1980',
      '123-45-6789',
      '212-555-0101',
      '2125550101',
      encodeURIComponent(NAME),
      Buffer.from(NAME).toString('base64'),
    ]) {
      expect(text).not.toContain(leaked);
    }
    const lines = out.lines();
    expect(lines.map((l) => l.msg)).toEqual(['eligibility checked', 'vault token [SECRET] leased', 'navigated', 'step failed', 'request failed', 'giving up']);
    expect(lines.every((l) => l.runId === '3b241101-e2bb-4255-8caf-4136c566a962' && typeof l.time === 'string' && !String(l.time).includes('['))).toBe(true);
    expect((lines[3]?.err as { stack: string }).stack).toMatch(/^Error: lookup failed for \[PHI\], SSN \[SSN\]/);
    expect(lines[5]?.phone).toBe('[PHONE]');
  });
});

describe('fail closed', () => {
  // A detector that breaks on some lines, as a bug in a layer would.
  const failing: Detector = {
    name: 'fails-on-boom',
    scan(text) {
      if (text.includes('BOOM')) throw new Error('detector bug');
    },
  };

  it('drops a line whose redaction throws, counts it and reports the count with a constant message', () => {
    const out = capture();
    const drops: number[] = [];
    const stream = createRedactingStream(out, createRedactor({ detectors: [failing] }), {
      reportIntervalMs: 0,
      onDrop: () => drops.push(1),
      now: () => new Date('2024-05-01T00:00:00.000Z'),
    });
    const logger = createLogger({ level: 'info', name: 'runner' }, stream);
    logger.info('first');
    logger.info('BOOM SSN 123-45-6789');
    logger.info({ note: 'BOOM again' }, 'second');
    logger.info('third');
    expect(stream.dropped).toBe(2);
    expect(drops).toHaveLength(2);
    expect(out.text()).not.toContain('BOOM');
    expect(out.text()).not.toContain('123-45-6789');
    expect(out.lines().map((l) => l.msg)).toEqual(['first', 'third']);

    stream.flush();
    const report = out.lines().at(-1);
    expect(report).toEqual({
      level: 'error',
      time: '2024-05-01T00:00:00.000Z',
      name: 'orderly.redaction',
      msg: DROPPED_LINES_MESSAGE,
      dropped: 2,
      droppedTotal: 2,
    });
    expect(out.flushed).toBe(1);

    // Nothing pending: no second report; the next drop is reported at end.
    stream.reportDropped();
    logger.info('BOOM');
    stream.end();
    const last = out.lines().at(-1);
    expect(last).toMatchObject({ msg: DROPPED_LINES_MESSAGE, dropped: 1, droppedTotal: 3 });
    expect(out.lines().filter((l) => l.msg === DROPPED_LINES_MESSAGE)).toHaveLength(2);
    expect(out.ended).toBe(1);
  });

  it('reports drops on a timer, once per interval', async () => {
    const out = capture();
    const stream = createRedactingStream(out, createRedactor({ detectors: [failing] }), { reportIntervalMs: 20 });
    stream.write('{"msg":"BOOM"}\n');
    stream.write('{"msg":"BOOM"}\n');
    expect(out.text()).toBe('');
    await new Promise((r) => setTimeout(r, 60));
    expect(out.lines()).toEqual([expect.objectContaining({ msg: DROPPED_LINES_MESSAGE, dropped: 2 })]);
  });

  it('drops when the redactor returns something other than a string, and survives a failing metric', () => {
    const out = capture();
    const bad = { redactJsonLine: () => undefined as unknown as string };
    const stream = createRedactingStream(out, bad, {
      reportIntervalMs: 0,
      onDrop: () => {
        throw new Error('metric down');
      },
    });
    expect(() => stream.write('{"msg":"x"}\n')).not.toThrow();
    expect(stream.dropped).toBe(1);
    expect(out.text()).toBe('');
  });

  it('redacts each line of a chunk with several lines on its own', () => {
    const out = capture();
    const stream = createRedactingStream(out, createRedactor({ detectors: [failing] }), { reportIntervalMs: 0 });
    stream.write('{"msg":"SSN 123-45-6789"}\n{"msg":"BOOM"}\n{"msg":"ok"}\n');
    expect(out.text()).toBe('{"msg":"SSN [SSN]"}\n{"msg":"ok"}\n');
    expect(stream.dropped).toBe(1);
  });
});
