import { z } from 'zod';
import { isOrderlyError, OrderlyError } from '../errors';
import { csv, logLevel, optionalString, parseConfig, port, positiveInt } from './parse';

const Schema = z.object({
  ORDERLY_SEGMENT: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
  ORDERLY_PORT: port(7300),
  ORDERLY_CONCURRENCY: positiveInt(1),
  ORDERLY_LOG_LEVEL: logLevel,
  ORDERLY_SEGMENTS: csv(z.string().regex(/^[a-z]+$/)).default([]),
  ORDERLY_DATABASE_URL: z.url(),
  ORDERLY_RUNNER_TOKEN: z.string().min(32),
  ORDERLY_OPTIONAL_NOTE: optionalString,
});

const good = {
  ORDERLY_SEGMENT: 'demo',
  ORDERLY_DATABASE_URL: 'postgres://fake-user@127.0.0.1:5432/fake',
  ORDERLY_RUNNER_TOKEN: 'fake-token-0000000000000000000000000',
};

function refusal(env: Record<string, string | undefined>): OrderlyError {
  try {
    parseConfig(Schema, env);
  } catch (err) {
    if (isOrderlyError(err)) return err;
    throw err;
  }
  throw new Error('expected parseConfig to throw');
}

describe('parseConfig', () => {
  it('parses, applies defaults and freezes', () => {
    const config = parseConfig(Schema, { ...good, UNRELATED: 'ignored' });
    expect(config).toMatchObject({ ORDERLY_SEGMENT: 'demo', ORDERLY_PORT: 7300, ORDERLY_CONCURRENCY: 1, ORDERLY_LOG_LEVEL: 'info', ORDERLY_SEGMENTS: [] });
    expect(config.ORDERLY_OPTIONAL_NOTE).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('coerces numbers and splits lists', () => {
    const config = parseConfig(Schema, {
      ...good,
      ORDERLY_PORT: '8080',
      ORDERLY_CONCURRENCY: '4',
      ORDERLY_SEGMENTS: 'demo, billing,,',
      ORDERLY_OPTIONAL_NOTE: '',
    });
    expect(config.ORDERLY_PORT).toBe(8080);
    expect(config.ORDERLY_CONCURRENCY).toBe(4);
    expect(config.ORDERLY_SEGMENTS).toEqual(['demo', 'billing']);
    expect(config.ORDERLY_OPTIONAL_NOTE).toBeUndefined();
  });

  it('lists every invalid variable in one error', () => {
    const err = refusal({
      ORDERLY_SEGMENT: 'Demo:Prod',
      ORDERLY_PORT: '70000',
      ORDERLY_CONCURRENCY: '0',
      ORDERLY_LOG_LEVEL: 'loud',
      ORDERLY_SEGMENTS: 'demo,BILLING',
      ORDERLY_DATABASE_URL: 'not a url',
      // ORDERLY_RUNNER_TOKEN missing
    });
    expect(err.code).toBe('ORDERLY_E_CONFIG_INVALID');
    for (const name of [
      'ORDERLY_SEGMENT',
      'ORDERLY_PORT',
      'ORDERLY_CONCURRENCY',
      'ORDERLY_LOG_LEVEL',
      'ORDERLY_SEGMENTS',
      'ORDERLY_DATABASE_URL',
      'ORDERLY_RUNNER_TOKEN',
    ]) {
      expect(err.message).toContain(name);
      expect((err.details.variables as readonly string[]).some((line) => line.startsWith(name))).toBe(true);
    }
    expect(err.message).not.toContain('ORDERLY_OPTIONAL_NOTE');
  });

  it('never includes a value in the error, even a secret-looking one', () => {
    const secrets = {
      ORDERLY_SEGMENT: 'FAKESECRET-seg-Zq8x',
      ORDERLY_PORT: 'FAKESECRET-port-9f',
      ORDERLY_LOG_LEVEL: 'FAKESECRET-level',
      ORDERLY_DATABASE_URL: 'FAKESECRET postgres pass=hunter2-fake',
      ORDERLY_RUNNER_TOKEN: 'FAKESECRET-tok',
      ORDERLY_SEGMENTS: 'ok,FAKESECRET-list',
    };
    const err = refusal(secrets);
    const said = [err.message, JSON.stringify(err.details), JSON.stringify(err.toJSON()), err.stack ?? ''].join('\n');
    expect(Object.keys(secrets).every((name) => said.includes(name))).toBe(true);
    expect(said).not.toContain('FAKESECRET');
    expect(said).not.toContain('hunter2');
  });
});
