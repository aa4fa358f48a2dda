import { createRedactor, DROPPED_LINES_MESSAGE, ErrorBody, LogLine, redactErrorBody, Redactor } from '@orderly/shared';
import type { AttemptTally } from './ports';

/** Log lines are sent in batches while a run goes on, so a long run's logs are not held back. */
const FLUSH_LINES = 500;

/** Until the run's own values are known (input claimed, secrets leased), shapes alone. */
const PATTERNS_ONLY = createRedactor();

/**
 * The log of one run attempt. Every line (bot, console, runner) and every error passes through the
 * run's redactor before it is kept; a line the redactor fails on is dropped and counted, never kept
 * raw (fail closed), and the count itself is logged.
 */
export class RunLog {
  private readonly lines: LogLine[] = [];
  private sent = 0;
  private dropped = 0;
  private tallied: AttemptTally = { redactionDrops: 0, sandboxDenials: 0 };
  private redactor: Pick<Redactor, 'redact'> = PATTERNS_ONLY;

  constructor(private readonly send: (batch: LogLine[]) => Promise<void>) {}

  /** Switches to the run's redactor: its secrets and declared PHI values, plus the patterns. */
  useRedactor(redactor: Pick<Redactor, 'redact'>): void {
    this.redactor = redactor;
  }

  add(line: Omit<LogLine, 'seq'>): void {
    let msg: string;
    try {
      msg = this.redactor.redact(line.msg);
    } catch {
      this.dropped++;
      this.tallied.redactionDrops++;
      return;
    }
    this.lines.push({ ...line, msg, seq: this.lines.length });
    if (this.lines.length - this.sent >= FLUSH_LINES) void this.flush();
  }

  /** A connection the sandbox refused: counted for the report, and logged (through the redactor: the host is the bot's choice). */
  sandboxDenied(msg: string): void {
    this.tallied.sandboxDenials++;
    this.runner('warn', msg);
  }

  /** The attempt's counts so far, for its final report (and the control room's metrics). */
  tally(): AttemptTally {
    return { ...this.tallied };
  }

  runner(level: LogLine['level'], msg: string): void {
    this.add({ at: new Date().toISOString(), level, source: 'runner', msg });
  }

  /** The error as it may leave the runner: message and details redacted (fail closed). */
  redactError(error: ErrorBody): ErrorBody {
    return redactErrorBody(error, this.redactor);
  }

  async flush(): Promise<void> {
    const batch = this.lines.slice(this.sent);
    this.sent = this.lines.length;
    if (batch.length) await this.send(batch);
  }

  /** Lines not sent yet, for the attempt's final report; says how many were dropped, if any. */
  rest(): LogLine[] {
    if (this.dropped > 0) {
      this.lines.push({
        seq: this.lines.length,
        at: new Date().toISOString(),
        level: 'warn',
        source: 'runner',
        msg: `${this.dropped} ${DROPPED_LINES_MESSAGE}`,
      });
      this.dropped = 0;
    }
    const rest = this.lines.slice(this.sent);
    this.sent = this.lines.length;
    return rest;
  }
}
