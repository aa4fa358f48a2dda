import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Which limit a sandbox passed. */
export type SandboxLimit = 'memory' | 'processes' | 'cpu' | 'file-size' | 'tmp-space';

/** One sandbox's control group: its memory and process limits, and whether it passed them. */
export interface LimitGroup {
  /** Moves processes in (bwrap and the sandbox's first process; all later ones descend from it). */
  join(pids: readonly number[]): void;
  /** The limit the group has hit since it was made, if any. */
  breached(): SandboxLimit | undefined;
  /** Removes the group once its processes are gone (best effort; an empty group costs nothing). */
  remove(): void;
}

export interface CgroupLimits {
  readonly kind: 'v1' | 'v2';
  create(name: string, limits: { memoryBytes: number; pids: number }): LimitGroup;
}

const V1_ROOT = '/sys/fs/cgroup';
const counter = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
/**
 * Makes a sandbox's own group directory. Never an existing one: a group left over from an earlier
 * sandbox keeps its oom and fork-refusal counters, and a new sandbox in it would read as having
 * passed a limit before it ran a line.
 */
function makeFreshDir(path: string): void {
  try {
    mkdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`control group ${path} already exists; a sandbox never reuses one`, { cause: err });
    throw err;
  }
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

/**
 * Removes a group's directory. The processes of a killed sandbox leave the group a moment after
 * bwrap exits, so an EBUSY is tried again for a few seconds; an empty group left over costs nothing.
 */
function removeDir(path: string, triesLeft = 20): void {
  try {
    rmdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBUSY' && triesLeft > 0) setTimeout(() => removeDir(path, triesLeft - 1), 150).unref();
  }
}

/**
 * cgroup v1 with separate memory and pids hierarchies (Debian hosts and containers that still use
 * the hybrid layout). An OOM kill in the group shows in memory.oom_control, a refused fork in
 * pids.events.
 */
function v1(parent: string): CgroupLimits {
  const memoryBase = join(V1_ROOT, 'memory', parent);
  const pidsBase = join(V1_ROOT, 'pids', parent);
  mkdirSync(memoryBase, { recursive: true });
  mkdirSync(pidsBase, { recursive: true });
  return {
    kind: 'v1',
    create(name, limits) {
      const memory = join(memoryBase, name);
      const pids = join(pidsBase, name);
      makeFreshDir(memory);
      makeFreshDir(pids);
      writeFileSync(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // No swap beyond the limit, where the kernel accounts swap at all.
      if (existsSync(join(memory, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
      writeFileSync(join(pids, 'pids.max'), String(limits.pids));
      return {
        join(members) {
          for (const pid of members) for (const dir of [memory, pids]) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
        },
        breached() {
          if (counter(read(join(memory, 'memory.oom_control')), 'oom_kill') > 0) return 'memory';
          if (counter(read(join(pids, 'pids.events')), 'max') > 0) return 'processes';
          return undefined;
        },
        remove() {
          removeDir(memory);
          removeDir(pids);
        },
      };
    },
  };
}

/** cgroup v2 (the unified hierarchy): memory.max, pids.max, and their events files. */
function v2(root: string, parent: string): CgroupLimits {
  const base = join(root, parent);
  mkdirSync(base, { recursive: true });
  // Controllers must be enabled on every level down to the sandbox's group.
  writeFileSync(join(root, 'cgroup.subtree_control'), '+memory +pids');
  writeFileSync(join(base, 'cgroup.subtree_control'), '+memory +pids');
  return {
    kind: 'v2',
    create(name, limits) {
      const dir = join(base, name);
      makeFreshDir(dir);
      writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
      writeFileSync(join(dir, 'pids.max'), String(limits.pids));
      return {
        join(members) {
          for (const pid of members) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
        },
        breached() {
          if (counter(read(join(dir, 'memory.events')), 'oom_kill') > 0) return 'memory';
          if (counter(read(join(dir, 'pids.events')), 'max') > 0) return 'processes';
          return undefined;
        },
        remove: () => removeDir(dir),
      };
    },
  };
}

/**
 * The control groups the runner can make for its sandboxes, under `orderly/<runner>`: v2 where
 * the unified hierarchy has the memory and pids controllers, else v1. Undefined where neither is
 * writable (not root, or a container without cgroup delegation): the runner then says so and
 * falls back to rlimits for processes, with no memory limit.
 */
export function detectCgroupLimits(runnerKey: string): { limits: CgroupLimits } | { unavailable: string } {
  const parent = join('orderly', runnerKey.replace(/[^A-Za-z0-9._-]/g, '_'));
  const attempts: Array<[string, () => CgroupLimits]> = [];
  const unified = read(join(V1_ROOT, 'cgroup.controllers'));
  if (/\bmemory\b/.test(unified) && /\bpids\b/.test(unified)) attempts.push(['cgroup v2', () => v2(V1_ROOT, parent)]);
  if (existsSync(join(V1_ROOT, 'memory', 'cgroup.procs')) && existsSync(join(V1_ROOT, 'pids', 'cgroup.procs'))) attempts.push(['cgroup v1', () => v1(parent)]);
  const reasons: string[] = [];
  for (const [what, make] of attempts) {
    try {
      return { limits: make() };
    } catch (err) {
      reasons.push(`${what}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  return { unavailable: reasons.length ? reasons.join('; ') : 'no cgroup hierarchy with the memory and pids controllers is mounted' };
}
