import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = resolve(__dirname, '../../../..');

// Under Xvfb (`apt-get install -y xvfb`): the recorder opens a headed Chromium on the virtual display.
test('orderly bot record URL starts the recorder on the page and writes the script to --out', async () => {
  expect(existsSync('/usr/bin/xvfb-run')).toBe(true);
  const server = createServer((_req, res) => res.end('<title>Synthetic portal</title><button id="go">Go</button>'));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/start`;
  const dir = mkdtempSync(join(tmpdir(), 'orderly-record-'));
  const out = join(dir, 'recorded.js');
  const child = spawn('xvfb-run', ['-a', process.execPath, join(root, 'control-room/bin/orderly.js'), 'bot', 'record', url, '--out', out], {
    detached: true,
    stdio: 'ignore',
  });
  let gone = false;
  const exited = new Promise<void>((done) => child.once('exit', () => ((gone = true), done())));
  let requested = false;
  server.on('request', () => (requested = true));
  try {
    // The recorder window opened the page and wrote the script's first step.
    while (!gone && !(requested && existsSync(out) && readFileSync(out, 'utf8').includes(`page.goto('${url}')`))) await sleep(200);
    expect(gone).toBe(false);
  } finally {
    // Closing the recorder: its whole process group (xvfb-run, the CLI, the runner, Chromium).
    if (!gone) process.kill(-child.pid!, 'SIGTERM');
    await exited;
    server.close();
  }
  const script = readFileSync(out, 'utf8');
  expect(script).toContain("require('playwright')");
  expect(script).toContain(`await page.goto('${url}');`);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);
