import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { RunView } from '@orderly/shared';
import { REPO, Stack, startStack } from '../harness';
import { VICTIM_CHILD_TAG, VICTIM_PORT, VICTIM_SHM_KEY } from '../fixtures/bots/neighbour-victim/src/index';

/**
 * Two sandboxes live on one runner at once (issue 10): a victim holds a marker in files, its
 * environment, a TCP port, an abstract socket, SysV shared memory, a browser page and a process,
 * and stays alive while a hostile neighbour in the other slot looks for it everywhere and signals
 * the victim's processes by their host pids. The neighbour finds nothing and touches nothing.
 */
const bot = (name: string) => join(REPO, 'test', 'fixtures', 'bots', name);

let stack: Stack;
let control: Server;
let controlUrl: string;
let victimReady = false;
let released = false;

beforeAll(async () => {
  stack = await startStack({ runner: false });
  for (const name of ['neighbour-victim', 'hostile-neighbour']) await stack.publish(bot(name));
  // Two slots: the victim holds one while the neighbour runs in the other.
  await stack.startRunner({ concurrency: 2 });
  control = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/page') res.end('<title>victim page</title><p>held</p>');
    else if (path === '/ready') {
      victimReady = true;
      res.end('ok');
    } else if (path === '/released') res.writeHead(released ? 200 : 404).end();
    else res.writeHead(404).end();
  });
  controlUrl = await new Promise((resolve) => control.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(control.address() as AddressInfo).port}/`)));
}, 120_000);

afterAll(async () => {
  released = true;
  control?.close();
  await stack?.close();
});

/** Host pids of processes whose command line holds `tag`, with their parents. */
function hostPidsOf(tag: string): number[] {
  const pids = new Set<number>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(tag)) continue;
      pids.add(Number(pid));
      // stat: "pid (comm) state ppid ..."; comm may hold spaces, so after the last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pids.add(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  return [...pids];
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function seenOf(run: RunView): Promise<string> {
  const logs = await stack.api('GET', `/v1/runs/${run.id}/logs`);
  const shots = await stack.api('GET', `/v1/runs/${run.id}/screenshots`);
  return JSON.stringify({ run, logs: logs.body, shots: shots.body });
}

test('a hostile run beside a live victim reads none of its /proc, files, environment, IPC, ports or browser, and cannot signal its processes', async () => {
  const marker = `VICTIM-${randomBytes(8).toString('hex')}`;
  const victimRun = await stack.startRun({ bot: 'neighbour-victim', input: { marker, controlUrl } });
  await until('the victim to hold everything', () => victimReady, 120_000);
  const victimPids = hostPidsOf(VICTIM_CHILD_TAG);
  // The victim's child, and its parent inside the sandbox (the bot host), seen from the host.
  expect(victimPids.length).toBeGreaterThanOrEqual(2);

  const attacker = await stack.startRun({
    bot: 'hostile-neighbour',
    input: { hostPids: victimPids.join(','), victimPort: VICTIM_PORT, shmKey: VICTIM_SHM_KEY, victimRunId: victimRun.id },
  });
  const attack = await stack.waitForRun(attacker.id, undefined, 150_000);
  // The victim was still running all along: the two sandboxes were live together.
  expect((await stack.api('GET', `/v1/runs/${victimRun.id}`)).body.status).toBe('active');
  released = true;
  const victim = await stack.waitForRun(victimRun.id, undefined, 120_000);

  expect({ status: attack.status, error: attack.error }).toEqual({ status: 'succeeded', error: undefined });
  const out = attack.result as Record<string, unknown>;
  // Found nowhere, and the search did look: its own processes and files were read.
  expect(out.found).toEqual([]);
  expect(out['/proc pids']).toEqual(expect.any(Number));
  expect(out['/proc pids'] as number).toBeLessThan(30);
  expect(out['files read'] as number).toBeGreaterThan(0);
  // IPC: the key is not in its IPC namespace, which holds no segment at all; the abstract socket is not in its network namespace.
  expect(out['shmget victim key']).toBe('ENOENT');
  expect(out['/proc/sysvipc/shm segments']).toBe(0);
  expect(out['abstract socket']).toBe('REFUSED:ECONNREFUSED');
  // The victim's port: nothing listens on it in this sandbox's loopback, nor on the host the proxy reaches.
  expect(out['tcp victim port']).toBe('REFUSED:ECONNREFUSED');
  expect(out['fetch victim port']).toMatch(/^REFUSED:/);
  // Signals: every host pid of the victim is unknown in this pid namespace.
  const signals = out.signals as Record<string, string>;
  expect(Object.keys(signals).length).toBeGreaterThanOrEqual(victimPids.length * 3 - 3);
  for (const [probe, outcome] of Object.entries(signals)) expect({ probe, outcome }).toEqual({ probe, outcome: 'REFUSED:ESRCH' });
  // The browser: its own context and page only.
  expect(out['browser contexts']).toBe(1);
  expect(JSON.stringify(out['cdp targets'])).not.toContain('victim page');
  // Its forged frames for the victim's run were written on its own channel, where they bind to its own run only: dropped.
  expect(out['forged frames']).toEqual([
    expect.stringMatching(/^WRITTEN:\d+$/),
    expect.stringMatching(/^WRITTEN:\d+$/),
    expect.stringMatching(/^WRITTEN:\d+$/),
  ]);

  // The victim succeeded with everything it held intact, and nothing of it is anywhere in the attacker's run.
  expect({ status: victim.status, error: victim.error }).toEqual({ status: 'succeeded', error: undefined });
  expect(victim.result).toEqual({ intact: { files: true, child: true, shm: true, page: true } });
  expect(await seenOf(attack)).not.toContain(marker);
  const victimSeen = await seenOf(victim);
  expect(victimSeen).not.toContain(marker);
  expect(victimSeen).not.toContain('FORGED-BY-NEIGHBOUR');
}, 420_000);
