import { randomBytes } from 'node:crypto';
import { accessSync, constants, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { RunnerConfig } from '../config';
import { startEgressProxy } from '../egress/proxy';
import { CgroupLimits, detectCgroupLimits } from './cgroup';
import { SandboxPool } from './pool';
import { EgressFactory, Sandbox } from './sandbox';
import { compileSeccompFilter } from './seccomp';
import { WarmPriority } from './warm-priority';

/** `host:port` of a URL, for the egress proxy's list of endpoints it always refuses. */
export function endpointOf(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : u.protocol === 'redis:' ? 6379 : u.protocol === 'rediss:' ? 6380 : 80));
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
  } catch {
    return undefined;
  }
}

/** Orderly's own services, which no bot may reach whatever its manifest lists. */
export function infrastructureEndpoints(
  config: Pick<RunnerConfig, 'redisUrl' | 'controlRoomUrl' | 'vaultAddress' | 'egressDeny'>,
): Array<{ host: string; port: number }> {
  const urls = [config.redisUrl, config.controlRoomUrl, ...(config.vaultAddress ? [config.vaultAddress] : [])];
  return [...urls.map(endpointOf).filter((e): e is { host: string; port: number } => e !== undefined), ...config.egressDeny];
}

/** Where the sandbox's system tools are looked for: the system's own directories, not the runner's PATH. */
const SYSTEM_BIN = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

function findTool(command: string): string | undefined {
  for (const dir of SYSTEM_BIN) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The host directories the sandbox's code lives in: read-only inside, nothing else of the runner's tree. */
export function sandboxCodePaths(): string[] {
  const nodeModules = dirname(dirname(require.resolve('playwright-core/package.json')));
  // The workspace package is a symlink in node_modules; Node loads it from its real path.
  const shared = realpathSync(join(nodeModules, '@orderly', 'shared'));
  const runner = join(__dirname, '../..');
  const node = dirname(dirname(process.execPath));
  return [...new Set([nodeModules, shared, runner, ...(node.startsWith('/usr') ? [] : [node])])];
}

/**
 * The runner's sandboxes, or a refusal to start: `bwrap` mode needs bubblewrap, util-linux
 * prlimit, Debian's python3-seccomp and user namespaces (checked by starting the first sandbox
 * of every slot). Control groups are used for memory and process limits where the runner may
 * make them (root, or a delegated cgroup); elsewhere it says so and limits processes by rlimit.
 */
export function createSandboxPool(config: RunnerConfig, log: Logger): SandboxPool {
  const { sandbox } = config;
  let seccomp: Buffer | undefined;
  let cgroups: CgroupLimits | undefined;
  let tools: { bwrap: string; prlimit: string } | undefined;
  const root = process.getuid?.() === 0;
  if (sandbox.mode === 'bwrap') {
    const bwrap = findTool('bwrap');
    const prlimit = findTool('prlimit');
    tools = bwrap && prlimit ? { bwrap, prlimit } : undefined;
    const missing = [bwrap ? '' : 'bwrap', prlimit ? '' : 'prlimit'].filter(Boolean);
    if (missing.length)
      throw new OrderlyError(
        'ORDERLY_E_SANDBOX_UNAVAILABLE',
        `the run sandbox needs ${missing.join(' and ')} (looked for in ${SYSTEM_BIN.join(', ')}): install Debian's bubblewrap (and util-linux), or set ORDERLY_SANDBOX=none for development only`,
      );
    seccomp = compileSeccompFilter();
    const detected = root ? detectCgroupLimits(config.runnerId) : { unavailable: 'the runner is not root' };
    if ('limits' in detected) cgroups = detected.limits;
    else log.warn({ reason: detected.unavailable }, 'no control group for sandboxes: memory is not limited, processes are limited by rlimit only');
  } else {
    log.warn('ORDERLY_SANDBOX=none: BOT CODE RUNS UNCONTAINED (no namespaces, no seccomp, no limits, full network); for development only');
  }
  if (!root) log.warn("the runner is not root: every slot runs its sandboxes as the runner's own user");
  const egress: EgressFactory = (options) => startEgressProxy({ ...options, infrastructure: infrastructureEndpoints(config) });
  const codePaths = sandboxCodePaths();
  // Group names are unique to this pool: runners in one process (tests) or a restarted runner
  // with the same pid and id must never meet an earlier sandbox's group.
  const poolToken = randomBytes(4).toString('hex');
  let serial = 0;
  // Only root may raise a session's priority back, so only a root runner's sandboxes yield.
  const warming = new Map<number, WarmPriority>();
  const launch = (slot: number, signal: AbortSignal) => {
    const id = sandbox.uidBase + slot;
    const priority = root ? new WarmPriority() : undefined;
    if (priority) warming.set(slot, priority);
    return Sandbox.start({
      mode: sandbox.mode,
      name: `sbx-${process.pid}-${poolToken}-${slot}-${++serial}`,
      user: root ? { uid: id, gid: id } : undefined,
      chromiumPath: config.chromiumPath,
      codePaths,
      seccomp,
      tools,
      cgroups,
      limits: sandbox.limits,
      egress,
      log,
      priority,
      signal,
    });
  };
  return new SandboxPool(launch, config.concurrency, sandbox.prewarm, (slot) => warming.get(slot)?.hurry());
}
