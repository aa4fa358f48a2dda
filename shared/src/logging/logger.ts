import pino, { DestinationStream, Logger, LoggerOptions } from 'pino';

/**
 * Structured fields that are always censored, wherever they appear (one level deep and at the
 * top). A constant list: never built from user input.
 */
export const REDACT_KEYS = [
  'password', 'passwd', 'secret', 'secrets', 'token', 'accessToken', 'refreshToken', 'apiKey', 'api_key',
  'authorization', 'Authorization', 'cookie', 'Cookie', 'set-cookie', 'privateKey', 'privateKeyPem',
  'ssn', 'dob', 'dateOfBirth', 'memberId', 'input', 'secretId', 'secret_id', 'client_token', 'wrapToken',
] as const;

export const REDACT_PATHS: string[] = REDACT_KEYS.flatMap((k) => [k, `*.${k}`, `headers.${k}`, `req.headers.${k}`]);

export type { Logger };

/** The process logger: pino, JSON lines, censoring the constant paths above. */
export function createLogger(options: { level: string; name: string; base?: Record<string, unknown> }, destination?: DestinationStream): Logger {
  const opts: LoggerOptions = {
    name: options.name,
    level: options.level,
    base: options.base ?? { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(opts, destination) : pino(opts);
}
