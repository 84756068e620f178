/**
 * cgroups for one container: which controllers this host lets us use (v1 as root, a delegated v2
 * subtree otherwise), a cgroup per container with its limits written before the process joins it,
 * the OOM count after exit, and removal.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CgroupController, CgroupSupport, Plan } from './plan.ts';

const V1_ROOT = '/sys/fs/cgroup';
const PARENT = 'wasmbox';

export function probeCgroups(): CgroupSupport {
  const support: CgroupSupport = {};
  const reasons: string[] = [];
  const v1: Record<CgroupController, string> = { memory: 'memory', pids: 'pids', cpu: 'cpu' };
  for (const [controller, dir] of Object.entries(v1) as Array<[CgroupController, string]>) {
    const p = path.join(V1_ROOT, dir);
    if (isCgroupMount(p, 'cgroup') && writable(p)) support[controller] = 'v1';
  }
  const v2 = v2Delegated();
  for (const controller of ['memory', 'pids', 'cpu'] as const) {
    if (!support[controller] && v2?.controllers.has(controller)) support[controller] = 'v2';
  }
  if (!support.memory || !support.pids || !support.cpu) {
    if (process.getuid?.() !== 0) reasons.push('not root, so cgroup v1 is not writable');
    reasons.push(v2 ? `the delegated cgroup v2 at ${v2.dir} offers only {${[...v2.controllers].join(', ')}}` : 'no writable cgroup v2 subtree is delegated to this user');
    support.missingReason = reasons.join('; ');
  }
  return support;
}

function isCgroupMount(p: string, type: 'cgroup' | 'cgroup2'): boolean {
  try {
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
    return mounts.split('\n').some((l) => {
      const f = l.split(' ');
      return f[1] === p && f[2] === type;
    });
  } catch {
    return false;
  }
}

function writable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Our own cgroup v2 directory when we may create children in it with controllers enabled. */
function v2Delegated(): { dir: string; controllers: Set<string> } | undefined {
  try {
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    const mount = mounts.find((f) => f[2] === 'cgroup2')?.[1];
    if (!mount) return undefined;
    const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))?.slice(3);
    if (own === undefined) return undefined;
    const dir = path.join(mount, own);
    if (!writable(dir)) return undefined;
    const controllers = new Set(fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean));
    return { dir, controllers };
  } catch {
    return undefined;
  }
}

export interface ContainerCgroups {
  /** cgroup.procs files the container's first process writes its pid into. */
  procs: string[];
  oomKills(): number;
  remove(): void;
}

export function createCgroups(plan: Plan): ContainerCgroups | undefined {
  const want = plan.cgroup;
  if (!want) return undefined;
  const dirs: Array<{ controller: CgroupController; version: 'v1' | 'v2'; dir: string }> = [];
  const v2 = Object.values(want).includes('v2') ? v2Delegated() : undefined;
  const made: string[] = [];
  try {
    for (const controller of ['memory', 'pids', 'cpu'] as const) {
      const version = want[controller];
      if (!version) continue;
      let dir: string;
      if (version === 'v1') {
        const parent = path.join(V1_ROOT, controller, PARENT);
        fs.mkdirSync(parent, { recursive: true });
        dir = path.join(parent, plan.id);
      } else {
        if (!v2) throw new Error('cgroup v2 delegation disappeared');
        dir = path.join(v2.dir, `${PARENT}-${plan.id}`);
        if (dirs.some((d) => d.dir === dir)) {
          dirs.push({ controller, version, dir });
          continue;
        }
      }
      fs.mkdirSync(dir);
      made.push(dir);
      dirs.push({ controller, version, dir });
    }
    for (const { controller, version, dir } of dirs) writeLimits(controller, version, dir, plan);
  } catch (e) {
    for (const d of made.reverse()) tryRmdir(d);
    throw e;
  }
  const unique = [...new Set(dirs.map((d) => d.dir))];
  const memory = dirs.find((d) => d.controller === 'memory');
  return {
    procs: unique.map((d) => path.join(d, 'cgroup.procs')),
    oomKills() {
      if (!memory) return 0;
      try {
        const file = memory.version === 'v1' ? 'memory.oom_control' : 'memory.events';
        const text = fs.readFileSync(path.join(memory.dir, file), 'utf8');
        const kills = /^oom_kill (\d+)$/m.exec(text);
        return kills ? Number(kills[1]) : 0;
      } catch {
        return 0;
      }
    },
    remove() {
      for (const d of unique) tryRmdir(d);
    },
  };
}

function writeLimits(controller: CgroupController, version: 'v1' | 'v2', dir: string, plan: Plan): void {
  const w = (file: string, value: string | number) => fs.writeFileSync(path.join(dir, file), String(value));
  const l = plan.limits;
  if (controller === 'memory' && l.memoryBytes !== undefined) {
    if (version === 'v1') {
      w('memory.limit_in_bytes', l.memoryBytes);
      // Swap counts too where the kernel accounts it: the limit is on memory, not on memory minus swap.
      if (fs.existsSync(path.join(dir, 'memory.memsw.limit_in_bytes'))) w('memory.memsw.limit_in_bytes', l.memoryBytes);
    } else {
      w('memory.max', l.memoryBytes);
      if (fs.existsSync(path.join(dir, 'memory.swap.max'))) w('memory.swap.max', 0);
    }
  }
  if (controller === 'pids' && l.pids !== undefined) w('pids.max', l.pids);
  if (controller === 'cpu' && l.cpus !== undefined) {
    const period = 100_000;
    const quota = Math.max(1000, Math.round(l.cpus * period));
    if (version === 'v1') {
      w('cpu.cfs_period_us', period);
      w('cpu.cfs_quota_us', quota);
    } else {
      w('cpu.max', `${quota} ${period}`);
    }
  }
}

function tryRmdir(dir: string): void {
  // A cgroup can be removed once its last process is gone; exit is reaped just before this runs.
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') return;
      const until = Date.now() + 10;
      while (Date.now() < until) { /* the kernel is still tearing the last task down */ }
    }
  }
}
