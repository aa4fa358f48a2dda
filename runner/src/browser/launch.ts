import { Browser, chromium } from 'playwright-core';

/**
 * Flags for Debian Chromium in a headless, closed-network runner. Background networking, sync
 * and component updates would phone home (and fail here); the sandbox needs user namespaces the
 * runner may not have, so the bot host's own user is the isolation boundary instead.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}

/** True when `url` may be loaded under the manifest's host allow-list. */
export function isAllowedUrl(url: string, hosts: readonly string[]): boolean {
  if (/^(about|data|blob):/.test(url)) return true;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (!/^(https?|wss?):$/.test(parsed.protocol)) return false;
  const port = parsed.port || (parsed.protocol === 'https:' || parsed.protocol === 'wss:' ? '443' : '80');
  const host = parsed.hostname.toLowerCase();
  return hosts.some((original) => {
    // The manifest accepts upper-case hex in IPv6 literals; URL hostnames are lower-case.
    const pattern = original.toLowerCase();
    const [patternHost = '', patternPort] = pattern.startsWith('[') ? [pattern.slice(0, pattern.indexOf(']') + 1), pattern.split(']:')[1]] : pattern.split(':');
    if (patternPort !== undefined && patternPort !== port) return false;
    if (patternHost.startsWith('*.')) return host.endsWith(patternHost.slice(1)) && host.length > patternHost.length - 1;
    return host === patternHost;
  });
}
