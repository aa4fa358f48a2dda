import { Browser, chromium } from 'playwright-core';

/**
 * Flags for Debian Chromium in a run sandbox. Background networking, sync and component updates
 * would phone home (and fail: the sandbox has no network of its own). Chromium's own sandbox is
 * off because it needs user namespaces, which the run sandbox forbids inside itself
 * (`--disable-userns`, seccomp): the run sandbox is the boundary, around the whole browser.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Autofill and optimisation-guide fetches would be refused by the egress proxy on every run.
  '--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter,Translate',
  '--disable-quic',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export function launchChromium(executablePath: string, extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

// The matcher lives with the egress proxy, which enforces the same list; re-exported for existing callers.
export { isAllowedUrl } from '../egress/allow-list';
