import { mkdtemp, rm } from 'node:fs/promises';
import { AddressInfo } from 'node:net';
import { Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, chromium } from 'playwright-core';
import { TEST_CHROMIUM_PATH } from '@orderly/shared/testing';
import { CHROMIUM_ARGS } from '../browser/launch';
import { bridgeLoopbackToSocket, chromiumProxyArgs } from './bridge';
import { EgressProxy, EgressRefusal, startEgressProxy } from './proxy';

// Real Chromium, launched with the proxy flags through the bridge (no sandbox here): the browser
// reaches a listed local page and nothing else, not even another port on the same loopback.

function serve(body: string, hits: string[]): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/html' }).end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

describe('Chromium through the egress proxy', () => {
  let dir: string;
  let proxy: EgressProxy;
  let bridge: { port: number; close(): Promise<void> };
  let browser: Browser;
  let allowed: { server: Server; port: number };
  let unlisted: { server: Server; port: number };
  const allowedHits: string[] = [];
  const unlistedHits: string[] = [];
  const refusals: EgressRefusal[] = [];
  const lookup = jest.fn(() => Promise.resolve([{ address: '127.0.0.1', family: 4 as const }]));

  beforeAll(async () => {
    allowed = await serve('<title>fake portal</title><p>allowed page</p>', allowedHits);
    unlisted = await serve('<title>unlisted</title><p>must not load</p>', unlistedHits);
    dir = await mkdtemp(join(tmpdir(), 'orderly-egress-chromium-'));
    proxy = await startEgressProxy({ socketPath: join(dir, 'egress.sock'), infrastructure: [], onRefused: (r) => refusals.push(r), lookup });
    proxy.setPolicy({ hosts: [`127.0.0.1:${allowed.port}`, `portal.example.test:${allowed.port}`] });
    bridge = await bridgeLoopbackToSocket(join(dir, 'egress.sock'));
    browser = await chromium.launch({ executablePath: TEST_CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, ...chromiumProxyArgs(bridge.port)] });
  });

  afterAll(async () => {
    await browser?.close();
    await bridge?.close();
    await proxy?.close();
    await new Promise((r) => allowed.server.close(r));
    await new Promise((r) => unlisted.server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a listed page, by address and by a name only the proxy resolves', async () => {
    const page = await browser.newPage();
    try {
      const response = await page.goto(`http://127.0.0.1:${allowed.port}/home`);
      expect(response?.status()).toBe(200);
      expect(await page.textContent('p')).toBe('allowed page');
      // Chromium cannot resolve this name (nothing but the proxy's lookup knows it): proof the request went through the proxy.
      const byName = await page.goto(`http://portal.example.test:${allowed.port}/by-name`);
      expect(byName?.status()).toBe(200);
      expect(allowedHits.filter((u) => u !== '/favicon.ico')).toEqual(['/home', '/by-name']);
    } finally {
      await page.close();
    }
  });

  it('does not load an unlisted page: another loopback port, or an https host', async () => {
    const page = await browser.newPage();
    try {
      const response = await page.goto(`http://127.0.0.1:${unlisted.port}/members?fake=1`);
      expect(response?.status()).toBe(403);
      expect(await page.textContent('body')).toContain('ORDERLY_E_EGRESS_REFUSED');
      await expect(page.goto('https://unlisted.example.test/')).rejects.toThrow(/ERR_TUNNEL_CONNECTION_FAILED|ERR_/);
      expect(unlistedHits).toEqual([]);
      expect(refusals).toEqual(
        expect.arrayContaining([
          { host: '127.0.0.1', port: unlisted.port, reason: 'not-listed' },
          { host: 'unlisted.example.test', port: 443, reason: 'not-listed' },
        ]),
      );
      expect(lookup).not.toHaveBeenCalledWith('unlisted.example.test');
    } finally {
      await page.close();
    }
  });
});
