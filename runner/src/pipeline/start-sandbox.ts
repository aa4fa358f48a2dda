import { OrderlyError } from '@orderly/shared';
import type { ActiveRuns } from './active-runs';
import type { RunSandbox, SandboxPort } from './ports';

export interface StartedSandbox {
  sandbox: RunSandbox;
  /** Destroys the sandbox (one that ran destroyed itself already) and frees its slot; idempotent. */
  release(): Promise<void>;
}

/**
 * Step 4: a fresh sandbox for the run, on an idle slot. It comes before the credential lease: a
 * run that cannot be contained gets no credentials. A sandbox that cannot be made is
 * `ORDERLY_E_SANDBOX_UNAVAILABLE` (retryable), never a run outside the sandbox.
 */
export async function startSandboxStep(runs: ActiveRuns, sandboxes: SandboxPort): Promise<StartedSandbox> {
  const slot = runs.takeSlot();
  if (slot === undefined) throw new OrderlyError('ORDERLY_E_INTERNAL', 'no idle sandbox slot');
  let sandbox: RunSandbox;
  try {
    sandbox = await sandboxes.acquire(slot);
  } catch (err) {
    runs.freeSlot(slot);
    throw err;
  }
  let released: Promise<void> | undefined;
  return {
    sandbox,
    release: () =>
      (released ??= (async () => {
        try {
          await sandbox.destroy();
        } finally {
          runs.freeSlot(slot);
        }
      })()),
  };
}
