import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { z } from 'zod';
import { ApiClient } from './api-client';

/** A control room stand-in that wants a step-up code, and accepts `accepted` only. */
let server: Server;
let url: string;
const seen: (string | undefined)[] = [];
const accepted = '123456';

beforeAll(async () => {
  server = createServer((req, res) => {
    const code = req.headers['x-orderly-totp'] as string | undefined;
    seen.push(code);
    res.setHeader('content-type', 'application/json');
    if (code === accepted) return res.end(JSON.stringify({ ok: true }));
    res.statusCode = 403;
    res.end(JSON.stringify({ error: { code: 'ORDERLY_E_STEP_UP_REQUIRED', message: 'needs a fresh second factor', retryable: false, details: {} } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));
beforeEach(() => {
  seen.length = 0;
});

const Ok = z.object({ ok: z.literal(true) });
const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (err: { code?: string }) => err.code,
  );

test('a step-up request is sent again once, with the code the prompt gave', async () => {
  const prompt = jest.fn(async () => accepted);
  const client = new ApiClient({ url, token: undefined }, prompt);
  await expect(client.request('POST', '/v1/keys/k/revoke', Ok)).resolves.toEqual({ ok: true });
  expect(prompt).toHaveBeenCalledTimes(1);
  expect(seen).toEqual([undefined, accepted]);
});

test('a wrong code is not retried again, and without a prompt the refusal stands', async () => {
  const wrong = new ApiClient({ url, token: undefined }, async () => '000000');
  expect(await codeOf(wrong.request('POST', '/v1/keys/k/revoke', Ok))).toBe('ORDERLY_E_STEP_UP_REQUIRED');
  expect(seen).toEqual([undefined, '000000']);

  seen.length = 0;
  expect(await codeOf(new ApiClient({ url, token: undefined }).request('POST', '/v1/keys/k/revoke', Ok))).toBe('ORDERLY_E_STEP_UP_REQUIRED');
  expect(seen).toEqual([undefined]);
});
