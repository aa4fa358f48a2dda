import pino, { DestinationStream, Logger, LoggerOptions } from 'pino';
import { createRedactingStream, createRedactor } from '../redaction';
import { REDACT_KEYS } from './redact-keys';

export { REDACT_KEYS } from './redact-keys';

/**
 * pino's own censoring, for the top level and request headers. Deeper keys are censored by the
 * line redactor every log line passes through, which matches REDACT_KEYS at any depth: pino's
 * `*.key` wildcards cost ten times pino itself per line.
 */
export const REDACT_PATHS: string[] = REDACT_KEYS.flatMap((k) => [k, `headers.${k}`, `req.headers.${k}`]);

export type { Logger };

/**
 * The process logger: pino, JSON lines, censoring the constant paths above, and every line passed
 * through the pattern layer of redaction on its way out (fail closed: a line that cannot be
 * redacted is dropped and counted). No log level turns this off.
 */
export function createLogger(options: { level: string; name: string; base?: Record<string, unknown> }, destination?: DestinationStream): Logger {
  const opts: LoggerOptions = {
    name: options.name,
    level: options.level,
    base: options.base ?? { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return pino(opts, createRedactingStream(destination ?? pino.destination({ dest: 1, sync: false }), createRedactor(), { name: options.name }));
}
