import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runnerTokenPath } from '@orderly/control-room';
import { startDemoPortal } from '@orderly/demo-portal';
import { httpControlRoomClient } from '@orderly/runner/dist/control-room-client';
import { leaseCredentials } from '@orderly/runner/dist/credentials/lease';
import { createLogger } from '@orderly/shared';
import { createVaultClientFactory } from '@orderly/shared/vault';
import { PORTAL_CREDENTIALS } from '../test/harness';
import type { Measurement } from './context';
import { median, note, round, since } from './lib';
import { launchWarmBrowser, rawReferenceOnce } from './raw-playwright';
import { MEMBER } from './stacks';

const WARMUP = 3;
const ITERATIONS = 30;
/** One raw Playwright run per this many leases: enough for its median, and the bench stays short. */
const LEASES_PER_RAW = 2;
const SETTLE_MS = 50;
const BOT = 'eligibility-check';
const NAMES = ['portal_user', 'portal_password'];

interface LeaseTiming {
  claimMs: number;
  leaseMs: number;
  recordMs: number;
  releaseMs: number;
}

/**
 * credential_lease_share: what a run's credentials cost on the runner's path, claim (the control
 * room mints a response-wrapped SecretID in Vault) → unwrap → AppRole login → read the
 * eligibility-check bot's two credentials → revoke, as a fraction of the raw Playwright run of the
 * reference bot's steps. Against a real control room (PostgreSQL) and the stack's dev Vault over
 * HTTP, with the runner's own client and lease code; the raw runs (warm browser, new context per
 * run, a portal without sign-in) are interleaved with the leases. Recording the token accessor
 * with the control room (the runner does it between lease and release) is timed apart and not in
 * the share.
 */
export const credentialLease: Measurement = {
  name: 'credential lease',
  uses: ['postgresQueueStack'],
  async run(ctx) {
    const stack = await ctx.get('postgresQueueStack');
    if (!stack.vault) throw new Error('the stack has no Vault');
    const runnerToken = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
    const client = httpControlRoomClient(stack.controlRoom.url, runnerToken);
    // As the runner makes it (runner/src/main.ts): one factory, one client per lease.
    const factory = createVaultClientFactory({ address: stack.vault.address });
    const log = createLogger({ level: 'info', name: 'bench-lease' }, stack.log);
    const portal = await startDemoPortal();
    const browser = await launchWarmBrowser().catch(async (err: unknown) => {
      await portal.close();
      throw err;
    });

    const leaseOnce = async (): Promise<LeaseTiming> => {
      // Not timed: the run is created as a client would, long before a runner claims it.
      const run = await stack.startRun({ bot: BOT, input: { portalUrl: stack.portal.url, ...MEMBER } });
      const t0 = performance.now();
      const claim = await client.claim(run.id, 'bench-lease');
      const claimMs = since(t0);
      if (!('credentials' in claim) || !claim.credentials) throw new Error('the claim carried no credential grant');
      const t1 = performance.now();
      const lease = await leaseCredentials({ factory, grant: claim.credentials, bot: BOT, names: NAMES, deadline: Date.now() + 60_000, log });
      const leaseMs = since(t1);
      try {
        if (lease.secrets.portal_user !== PORTAL_CREDENTIALS.username || lease.secrets.portal_password !== PORTAL_CREDENTIALS.password) {
          throw new Error('the lease did not read the credentials stored in Vault');
        }
        const t2 = performance.now();
        await client.recordLease(run.id, 1, claim.fence, lease.accessor);
        const recordMs = since(t2);
        const t3 = performance.now();
        await lease.release();
        return { claimMs, leaseMs, recordMs, releaseMs: since(t3) };
      } finally {
        await lease.release();
      }
    };

    try {
      for (let i = 0; i < WARMUP; i++) {
        await rawReferenceOnce(browser, portal.url);
        await leaseOnce();
      }
      const raw: number[] = [];
      const leases: LeaseTiming[] = [];
      const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      for (let i = 0; i < ITERATIONS; i++) {
        if (i % LEASES_PER_RAW === 0) {
          raw.push((await rawReferenceOnce(browser, portal.url)).totalMs);
          await settle();
        }
        leases.push(await leaseOnce());
        await settle();
      }
      const rawMs = median(raw);
      const totalMs = median(leases.map((l) => l.claimMs + l.leaseMs + l.releaseMs));
      const part = (pick: (l: LeaseTiming) => number) => round(median(leases.map(pick)), 1);
      note(
        `credential lease: claim+lease+release ${totalMs.toFixed(1)} ms (claim ${part((l) => l.claimMs)}, lease ${part((l) => l.leaseMs)}, release ${part((l) => l.releaseMs)}); raw reference run ${rawMs.toFixed(1)} ms (medians of ${ITERATIONS} and ${raw.length})`,
      );
      return {
        credential_lease_share: round(totalMs / rawMs, 3),
        credential_lease_total_ms: round(totalMs, 1),
        credential_claim_ms: part((l) => l.claimMs),
        credential_lease_ms: part((l) => l.leaseMs),
        credential_release_ms: part((l) => l.releaseMs),
        credential_record_lease_ms: part((l) => l.recordMs),
        credential_raw_playwright_ms: round(rawMs, 1),
      };
    } finally {
      await browser.close().catch(() => undefined);
      await portal.close().catch(() => undefined);
    }
  },
};
