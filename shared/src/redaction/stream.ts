import type { DestinationStream } from 'pino';
import type { Redactor } from './redactor';

/**
 * A pino destination that redacts every serialized line before the real destination sees it.
 * It sits below pino, so no log level, child logger or serializer can route around it.
 *
 * Fail closed: a line whose redaction throws is dropped, never written raw. Drops are counted
 * (`dropped`, `onDrop` for a metric) and reported on the destination itself as a constant
 * message that carries only the count, within `reportIntervalMs` and at every flush or end.
 */

export const DROPPED_LINES_MESSAGE = 'log lines dropped because they could not be redacted';

export interface RedactingStreamOptions {
  /** How soon a drop is reported (ms). 0 reports only at flush and end. Default 10 s. */
  reportIntervalMs?: number;
  /** Called once per dropped line, e.g. to increment a metric. Must not throw. */
  onDrop?: () => void;
  /** Logger name on the report line. */
  name?: string;
  /** Clock for the report line (tests). */
  now?: () => Date;
}

/** What pino needs from a destination, and what `createRedactingStream` passes on when present. */
export interface Destination extends DestinationStream {
  flush?(cb?: (err?: Error | null) => void): void;
  flushSync?(): void;
  end?(): void;
}

export interface RedactingStream extends Destination {
  write(chunk: string): boolean;
  flush(cb?: (err?: Error | null) => void): void;
  flushSync(): void;
  end(): void;
  /** Lines dropped since the stream was created. */
  readonly dropped: number;
  /** Writes the pending dropped-count line now, if any line was dropped since the last one. */
  reportDropped(): void;
}

/** Wraps `destination` so that every line written to it has gone through `redactor`. */
export function createRedactingStream(
  destination: Destination,
  redactor: Pick<Redactor, 'redactJsonLine'>,
  options: RedactingStreamOptions = {},
): RedactingStream {
  const interval = options.reportIntervalMs ?? 10_000;
  const now = options.now ?? (() => new Date());
  const name = options.name ?? 'orderly.redaction';
  let dropped = 0;
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;

  const report = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending === 0) return;
    const count = pending;
    pending = 0;
    // Built from numbers and constants only: nothing of the dropped lines is in it.
    destination.write(
      `{"level":"error","time":"${now().toISOString()}","name":${JSON.stringify(name)},"msg":"${DROPPED_LINES_MESSAGE}","dropped":${count},"droppedTotal":${dropped}}\n`,
    );
  };

  const drop = (): void => {
    dropped++;
    pending++;
    try {
      options.onDrop?.();
    } catch {
      // A failing metric must not turn a drop into a crash of the logger.
    }
    if (interval > 0 && timer === undefined && !ended) {
      timer = setTimeout(report, interval);
      timer.unref();
    }
  };

  const redactLine = (line: string): string | undefined => {
    if (line.length === 0) return line;
    try {
      const out = redactor.redactJsonLine(line);
      // A redactor that returns something other than a string has failed too.
      if (typeof out !== 'string') throw new TypeError('redactor returned a non-string');
      return out;
    } catch {
      drop();
      return undefined;
    }
  };

  const stream: RedactingStream = {
    write(chunk: string): boolean {
      const text = typeof chunk === 'string' ? chunk : String(chunk);
      // pino writes one line per call: the common case, without re-joining an unchanged line.
      const nl = text.indexOf('\n');
      if (nl === text.length - 1) {
        const line = text.slice(0, nl);
        const redacted = redactLine(line);
        if (redacted !== undefined) destination.write(redacted === line ? text : redacted + '\n');
        return true;
      }
      // Several lines in one chunk are redacted one by one.
      let out = '';
      let start = 0;
      while (start < text.length) {
        const nl = text.indexOf('\n', start);
        const end = nl < 0 ? text.length : nl;
        const redacted = redactLine(text.slice(start, end));
        if (redacted !== undefined) out += nl < 0 ? redacted : redacted + '\n';
        start = end + 1;
      }
      if (out.length > 0) destination.write(out);
      return true;
    },
    flush(cb) {
      report();
      if (typeof destination.flush === 'function') destination.flush(cb);
      else cb?.();
    },
    flushSync() {
      report();
      destination.flushSync?.();
    },
    end() {
      report();
      ended = true;
      destination.end?.();
    },
    get dropped() {
      return dropped;
    },
    reportDropped: report,
  };
  return stream;
}
