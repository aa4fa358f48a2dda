import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@orderly/shared';
import type { AuditLog } from '../audit/audit';
import { loadControlRoomConfig } from '../config';
import type { Db } from '../db/db';
import { startAlerts } from '.';
import { retryDelayMs } from './backoff';
import { signAlert, verifyAlertSignature } from './signature';

const secret = Buffer.from('synthetic-test-secret-'.repeat(2));

describe('alert signature', () => {
  const body = JSON.stringify({ v: 1, kind: 'run.dead_lettered', runId: '00000000-0000-4000-8000-000000000001' });
  const now = 1_900_000_000_000;
  const ts = Math.floor(now / 1000);

  test('a receiver accepts the exact body and timestamp that were signed', () => {
    expect(verifyAlertSignature(secret, { timestamp: String(ts), signature: signAlert(secret, ts, body) }, body, { now })).toEqual({ ok: true });
  });

  test('a changed body, timestamp or key does not verify', () => {
    const signature = signAlert(secret, ts, body);
    expect(verifyAlertSignature(secret, { timestamp: String(ts), signature }, `${body} `, { now })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyAlertSignature(secret, { timestamp: String(ts - 1), signature }, body, { now })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyAlertSignature(Buffer.from('another-synthetic-secret-value'), { timestamp: String(ts), signature }, body, { now })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  test('an old delivery (a replay) is refused even with a valid MAC', () => {
    const old = ts - 3600;
    expect(verifyAlertSignature(secret, { timestamp: String(old), signature: signAlert(secret, old, body) }, body, { now })).toEqual({
      ok: false,
      reason: 'stale',
    });
    expect(verifyAlertSignature(secret, { timestamp: undefined, signature: 'v1=00' }, body, { now })).toEqual({ ok: false, reason: 'missing' });
  });

  test('the scheme is HMAC-SHA256 over "<timestamp>.<body>", hex, prefixed v1=', () => {
    expect(signAlert(Buffer.from('k'), 1, 'b')).toBe(`v1=${createHmac('sha256', 'k').update('1.b').digest('hex')}`);
  });
});

describe('retry backoff', () => {
  const options = { baseMs: 1000, maxMs: 300_000 };

  test('doubles per failure, within 50-100 % jitter', () => {
    expect(retryDelayMs(1, options, () => 1)).toBe(1000);
    expect(retryDelayMs(1, options, () => 0)).toBe(500);
    expect(retryDelayMs(4, options, () => 1)).toBe(8000);
  });

  test('stays at the maximum interval after many failures, never stops', () => {
    expect(retryDelayMs(50, options, () => 1)).toBe(300_000);
    expect(retryDelayMs(10_000, options, () => 0)).toBe(150_000);
  });
});

describe('alert configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-alert-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const silent = createLogger({ level: 'silent', name: 'test' });
  const db = {} as Db; // never queried: no webhook timer runs in these checks
  const audit = {} as AuditLog;

  test('a webhook URL needs a secret file; the threshold defaults to 15 minutes', () => {
    expect(() => loadControlRoomConfig({ ORDERLY_ALERT_WEBHOOK_URL: 'https://alerts.example.test/hook' })).toThrow(/ORDERLY_ALERT_WEBHOOK_SECRET_FILE/);
    expect(() => loadControlRoomConfig({ ORDERLY_ALERT_WEBHOOK_URL: 'not a url', ORDERLY_ALERT_WEBHOOK_SECRET_FILE: 'x' })).toThrow(
      /ORDERLY_ALERT_WEBHOOK_URL/,
    );
    expect(() => loadControlRoomConfig({ ORDERLY_ALERT_QUEUE_AGE_SECONDS: '0' })).toThrow(/ORDERLY_ALERT_QUEUE_AGE_SECONDS/);
    expect(loadControlRoomConfig({}).alerts).toEqual({ webhookUrl: undefined, secretFile: undefined, queueAgeSeconds: 900 });
  });

  test('a missing or short secret stops the start', async () => {
    const config = { webhookUrl: 'http://127.0.0.1:9/hook', secretFile: join(dir, 'missing'), queueAgeSeconds: 60 };
    expect(() => startAlerts({ db, audit, log: silent, segments: [], config })).toThrow(expect.objectContaining({ code: 'ORDERLY_E_CONFIG_INVALID' }));
    writeFileSync(join(dir, 'short'), 'too-short\n');
    expect(() => startAlerts({ db, audit, log: silent, segments: [], config: { ...config, secretFile: join(dir, 'short') } })).toThrow(/at least 16 bytes/);
    const off = startAlerts({ db, audit, log: silent, segments: [], config: { webhookUrl: undefined, secretFile: undefined, queueAgeSeconds: 60 } });
    await off.close();
  });
});
