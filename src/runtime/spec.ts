import { SandboxError } from '../errors.ts';
import type { ImageConfig } from '../loader/types.ts';
import { isBareModule } from '../loader/wasm-image.ts';
import type { ContainerSpec, Limits, Mount, PublishedPort } from './types.ts';

/** What a caller may override on top of the image config (docker run's options). */
export interface RunOptions {
  /** Replaces the image's Cmd (`docker run IMAGE ARGS...`); an empty array keeps the image's Cmd. */
  args?: string[];
  /** Replaces the image's Entrypoint and clears its Cmd (`--entrypoint`); '' or [] clears the Entrypoint. */
  entrypoint?: string | string[];
  /**
   * `K=V` sets K. A bare `K` takes K's value from `hostEnv` (docker's `-e K`), and is dropped when the
   * host has no K. Applied after the image's Env, in order; later entries win.
   */
  env?: string[] | Record<string, string>;
  /** Where a bare `K` in `env` takes its value from. Nothing is taken from the host without it. */
  hostEnv?: Record<string, string | undefined>;
  /** Absolute working directory (`-w`); default the image's WorkingDir, else '/'. */
  workdir?: string;
  user?: string;
  /** `--cap-add` / `--cap-drop`: capabilities of a Linux image's root processes (see ContainerSpec). */
  capAdd?: string[];
  capDrop?: string[];
  /** `--group-add`: more supplementary groups (group names or gids) for a Linux image's user. */
  groupAdd?: string[];
  hostname?: string;
  mounts?: Mount[];
  /** `--read-only`: the container's root filesystem is read-only. */
  readOnly?: boolean;
  /** Keep stdin open for the guest (`-i`); otherwise the guest reads end of file. */
  interactive?: boolean;
  /** `-t`: a terminal for the guest (see ContainerSpec.tty), of `ttySize` (default 80 x 24). */
  tty?: boolean;
  ttySize?: { cols: number; rows: number };
  /** `--network`: 'none' (loopback only, the default) or 'host'. */
  network?: 'none' | 'host';
  /** `-p/--publish`: container TCP ports reachable at host ports (Linux images; see ContainerSpec.publish). */
  publish?: PublishedPort[];
  limits?: Limits;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The container spec from the image config with `opts` on top, by docker's rules:
 * - args replace Cmd; `entrypoint` replaces Entrypoint and clears Cmd;
 * - env: PATH (docker's default when neither the image nor the options set it), HOSTNAME, TERM=xterm
 *   with a tty, the image's Env, the options' env (same key replaces in place), HOME=/root when unset
 *   (`defaultHome`: a Linux container's user gets the home /etc/passwd gives it);
 * - cwd: `workdir`, else WorkingDir, else '/'; it must be absolute.
 * A bare .wasm module gets none of docker's defaults (PATH, HOSTNAME, HOME) and no root filesystem:
 * only what the options grant, as `wasmtime run` does.
 */
export function resolveSpec(config: ImageConfig, opts: RunOptions = {}, id = ''): ContainerSpec {
  const rc = config.config ?? {};
  let entrypoint = rc.Entrypoint ?? [];
  let cmd = rc.Cmd ?? [];
  if (opts.entrypoint !== undefined) {
    entrypoint = typeof opts.entrypoint === 'string' ? (opts.entrypoint === '' ? [] : [opts.entrypoint]) : opts.entrypoint;
    cmd = [];
  }
  if (opts.args && opts.args.length > 0) cmd = opts.args;
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    throw new SandboxError('INVALID_ARGUMENT', 'no command specified: the image has no Entrypoint or Cmd, and none was given');
  }

  const hostname = opts.hostname ?? id.slice(0, 12);
  const env = new EnvList();
  for (const e of rc.Env ?? []) env.set(e);
  for (const e of normalizeEnvOptions(opts.env, opts.hostEnv)) env.set(e);
  const merged = env.entries();
  const bare = isBareModule(config);
  const head: string[] = [];
  if (!bare && !env.has('PATH')) head.push(`PATH=${DEFAULT_PATH}`);
  if (!bare && hostname && !env.has('HOSTNAME')) head.push(`HOSTNAME=${hostname}`);
  // (docker's -t sets TERM for the guest's terminal when nothing else did)
  if (!bare && opts.tty && !env.has('TERM')) head.push('TERM=xterm');
  const tail = bare || env.has('HOME') ? [] : ['HOME=/root'];

  const cwd = opts.workdir ?? (rc.WorkingDir ? rc.WorkingDir : '/');
  if (!cwd.startsWith('/')) {
    throw new SandboxError('INVALID_ARGUMENT', `the working directory '${cwd}' is invalid: it needs to be an absolute path`);
  }

  const user = opts.user ?? (rc.User || undefined);
  return {
    argv,
    env: [...head, ...merged, ...tail],
    cwd: normalizeAbsolute(cwd),
    ...(user ? { user } : {}),
    ...(opts.groupAdd?.length ? { groupAdd: [...opts.groupAdd] } : {}),
    ...(opts.capAdd?.length ? { capAdd: [...opts.capAdd] } : {}),
    ...(opts.capDrop?.length ? { capDrop: [...opts.capDrop] } : {}),
    ...(hostname ? { hostname } : {}),
    tty: opts.tty ?? false,
    ...(opts.tty && opts.ttySize ? { ttySize: { ...opts.ttySize } } : {}),
    stdin: opts.interactive ?? false,
    readOnlyRoot: opts.readOnly ?? false,
    ...(bare ? { rootfsPreopen: false } : {}),
    ...(tail.length > 0 ? { defaultHome: true } : {}),
    mounts: (opts.mounts ?? []).map(checkMount),
    network: opts.network ?? 'none',
    ...(opts.publish?.length ? { publish: opts.publish.map(checkPublishedPort) } : {}),
    limits: checkLimits(opts.limits ?? {}),
  };
}

/** `KEY=VALUE` lines of a docker env file: `#` comments and blank lines skipped, a bare KEY from the host. */
export function parseEnvFile(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line.trim() : line.slice(0, eq);
    if (key === '' || /\s/.test(key)) throw new SandboxError('INVALID_ARGUMENT', `env file: variable '${key}' contains whitespace or is empty`);
    out.push(eq < 0 ? key : line);
  }
  return out;
}

function normalizeEnvOptions(env: RunOptions['env'], hostEnv: RunOptions['hostEnv']): string[] {
  if (!env) return [];
  if (!Array.isArray(env)) return Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const out: string[] = [];
  for (const e of env) {
    const eq = e.indexOf('=');
    if (eq === 0) throw new SandboxError('INVALID_ARGUMENT', `invalid environment variable: ${e}`);
    if (eq > 0) { out.push(e); continue; }
    const value = hostEnv?.[e];
    if (value !== undefined) out.push(`${e}=${value}`);
  }
  return out;
}

class EnvList {
  readonly #order: string[] = [];
  readonly #values = new Map<string, string>();
  set(entry: string): void {
    const eq = entry.indexOf('=');
    const key = eq < 0 ? entry : entry.slice(0, eq);
    if (!this.#values.has(key)) this.#order.push(key);
    this.#values.set(key, eq < 0 ? '' : entry.slice(eq + 1));
  }
  has(key: string): boolean { return this.#values.has(key); }
  entries(): string[] { return this.#order.map((k) => `${k}=${this.#values.get(k)}`); }
}

function normalizeAbsolute(p: string): string {
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  return '/' + parts.join('/');
}

function checkMount(m: Mount): Mount {
  if (!m.guest.startsWith('/')) {
    throw new SandboxError('INVALID_ARGUMENT', `invalid mount ${m.guest}: the container path must be absolute`);
  }
  return { ...m, guest: normalizeAbsolute(m.guest) };
}

/**
 * docker's `-p [ip:][hostPort:]containerPort[/tcp]` (an IPv6 address in brackets; `ip::containerPort` and a
 * bare containerPort take a host port the host picks). UDP and port ranges are refused.
 */
export function parsePublish(spec: string): PublishedPort {
  const bad = (why: string) => new SandboxError('INVALID_ARGUMENT', `invalid -p/--publish '${spec}': ${why}`);
  let rest = spec.trim();
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1).toLowerCase();
    if (proto !== 'tcp') throw bad(proto === 'udp' || proto === 'sctp' ? `only TCP ports are published here, not ${proto}` : `unknown protocol '${proto}'`);
    rest = rest.slice(0, slash);
  }
  let hostIp: string | undefined;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (v6) {
    hostIp = v6[1]!;
    rest = v6[2]!;
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) hostIp = parts.shift()!;
  if (parts.length > 2 || (v6 && parts.length !== 2)) throw bad('use [ip:]hostPort:containerPort[/tcp]');
  if (parts.some((p) => p.includes('-'))) throw bad('port ranges are not supported; publish each port with a -p of its own');
  const port = (text: string, what: string, min: number): number => {
    if (!/^\d{1,5}$/.test(text) || Number(text) < min || Number(text) > 65535) throw bad(`${what} must be a number from ${min} to 65535`);
    return Number(text);
  };
  const containerPort = port(parts.at(-1)!, 'the container port', 1);
  const hostPort = parts.length === 2 && parts[0] !== '' ? port(parts[0]!, 'the host port', 0) : 0;
  return checkPublishedPort({ ...(hostIp ? { hostIp } : {}), hostPort, containerPort });
}

function checkPublishedPort(p: PublishedPort): PublishedPort {
  const what = JSON.stringify(p);
  const inRange = (v: unknown, min: number) => Number.isInteger(v) && (v as number) >= min && (v as number) <= 65535;
  if (!inRange(p.containerPort, 1)) throw new SandboxError('INVALID_ARGUMENT', `published port ${what}: containerPort must be a whole number from 1 to 65535`);
  if (!inRange(p.hostPort, 0)) throw new SandboxError('INVALID_ARGUMENT', `published port ${what}: hostPort must be a whole number from 0 to 65535 (0: any free port)`);
  if (p.hostIp !== undefined && !isIpAddress(p.hostIp)) throw new SandboxError('INVALID_ARGUMENT', `published port ${what}: hostIp must be an IPv4 or IPv6 address`);
  return { ...(p.hostIp !== undefined ? { hostIp: p.hostIp } : {}), hostPort: p.hostPort, containerPort: p.containerPort };
}

function isIpAddress(s: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255);
  // (IPv6 loosely: the host's listen() has the last word on it)
  return s.includes(':') && /^[0-9A-Fa-f:.]{2,45}$/.test(s);
}

function checkLimits(l: Limits): Limits {
  for (const [k, v] of Object.entries(l)) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new SandboxError('INVALID_ARGUMENT', `limit ${k} must be a non-negative number, got ${String(v)}`);
    }
  }
  return l;
}

/** `64m`, `1g`, `512k`, `100` (bytes), `1.5g`: docker's size units (b, k, m, g, t; powers of 1024). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) throw new SandboxError('INVALID_ARGUMENT', `invalid size '${s}': use a number with an optional unit b, k, m, g (e.g. 64m)`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * unit);
}

/** `5s`, `500ms`, `2m`, `1h`, `1m30s`, or a plain number of seconds. Returns milliseconds. */
export function parseDuration(s: string): number {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = t;
  const re = /^(\d+(?:\.\d+)?)(ms|s|m|h)/;
  if (rest === '') throw new SandboxError('INVALID_ARGUMENT', 'empty duration');
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m) throw new SandboxError('INVALID_ARGUMENT', `invalid duration '${s}': use e.g. 5s, 500ms, 2m, 1h`);
    total += Number(m[1]) * unitMs[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}
