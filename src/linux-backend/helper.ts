/**
 * The namespace helper process (see helperInvocation): started once per backend, it holds the user
 * and mount namespaces the containers' overlay roots are mounted in, and mounts and unmounts them on
 * request. A mount through it costs one fork+exec of a small static binary inside a process that is
 * already in the right namespaces, instead of a chain of process starts per container.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { SandboxError } from '../errors.ts';
import { helperInvocation, helperLine } from './invocation.ts';
import { newIdMapArgs, type SubIdMapping } from './subids.ts';

/** An unprivileged caller's subordinate ids and the setuid tools that map them (package uidmap). */
export interface SubIdTools { mapping: SubIdMapping; newuidmap: string; newgidmap: string }

const HOST_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
/** Every uid and gid to itself (4294967295 = (uid_t)-1 stays unmapped). */
const IDENTITY_MAP = '0 0 4294967295\n';
const START_TIMEOUT_MS = 10_000;

export class NamespaceHelper {
  readonly pid: number;
  /** /proc/<pid>/ns/mnt: where the overlays are mounted. */
  readonly mountNs: string;
  /** /proc/<pid>/ns/user */
  readonly userNs: string;
  readonly #child: ChildProcess;
  readonly #waiting: Array<(line: string | undefined) => void> = [];
  /** Lines that came before anything waited for them (its "u" and "ok" can arrive in one read). */
  readonly #unread: string[] = [];
  #buffer = '';
  #stderr = '';
  #closed = false;
  #userNsFd: number | undefined;
  #subIds: SubIdMapping | undefined;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.pid = child.pid!;
    this.mountNs = `/proc/${this.pid}/ns/mnt`;
    this.userNs = `/proc/${this.pid}/ns/user`;
  }

  /** An open descriptor of the identity-mapped user namespace (root only), for bwrap --userns. */
  get userNsFd(): number | undefined {
    return this.#userNsFd;
  }

  /** Not root: the /etc/subuid map its user namespace holds (undefined: only the caller's uid is mapped). */
  get subIds(): SubIdMapping | undefined {
    return this.#subIds;
  }

  /**
   * Starts the helper; rejects with a reason when this host cannot run it. `subIds` (not root): its user
   * namespace maps the caller's subordinate ids through newuidmap/newgidmap.
   */
  static async start(busybox: string, privileged: boolean, subIds?: SubIdTools, trim = true): Promise<NamespaceHelper> {
    const mapped = !privileged && subIds !== undefined;
    const inv = helperInvocation(busybox, privileged, mapped, trim);
    const child = spawn(inv.command, inv.args, { stdio: ['pipe', 'pipe', 'pipe'], env: HOST_ENV, ...(privileged ? { uid: 0, gid: 0 } : {}) });
    // As root the map is written as soon as the helper has its user namespace (about a millisecond after
    // the fork), waited for right here: its "u" would wait for this thread's next turn of the event loop,
    // which a caller busy opening an image holds up for several milliseconds.
    const writeIdentityMap = () => {
      // Written by us (root, in the parent namespace): any map is allowed, and no newuidmap is needed.
      fs.writeFileSync(`/proc/${child.pid}/uid_map`, IDENTITY_MAP);
      fs.writeFileSync(`/proc/${child.pid}/gid_map`, IDENTITY_MAP);
      child.stdin!.write('\n');
    };
    let early = false;
    try {
      // (a trimming helper makes its user namespace only after a few process starts: not worth a wait here)
      early = inv.writeMaps && !mapped && !trim && child.pid !== undefined && userNsSwitched(child.pid);
      if (early) writeIdentityMap();
    } catch {
      early = false; // (the handshake below does it, or says why it cannot)
    }
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const helper = new NamespaceHelper(child);
    helper.#listen();
    const timer = setTimeout(() => helper.close(), START_TIMEOUT_MS);
    try {
      if (inv.writeMaps) {
        await helper.#expect('u');
        if (mapped) {
          // (the setuid tools check /etc/subuid and /etc/subgid themselves; the two maps are independent)
          await Promise.all([
            runTool(subIds.newuidmap, newIdMapArgs(helper.pid, subIds.mapping.uid)),
            runTool(subIds.newgidmap, newIdMapArgs(helper.pid, subIds.mapping.gid)),
          ]);
          helper.#subIds = subIds.mapping;
          child.stdin!.write('\n');
        } else if (!early) {
          writeIdentityMap();
        }
      }
      await helper.#expect('ok');
    } catch (e) {
      helper.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (privileged) helper.#userNsFd = fs.openSync(helper.userNs, 'r');
    helper.#idle();
    return helper;
  }

  /** Mounts an overlay with these options on target, in the helper's mount namespace. */
  async mount(options: string, target: string): Promise<void> {
    await this.#request(helperLine('m', options, target), `mount the container's root on ${target}`);
  }

  async unmount(target: string): Promise<void> {
    await this.#request(helperLine('u', '', target), `unmount ${target}`);
  }

  /**
   * Has the helper remove these directories after this process has exited (it reads its input to the end
   * before it exits): for 'exit' handlers, which cannot wait. The lines go into the pipe at once when it
   * has room; false when the helper cannot take them (the caller removes the directories itself).
   */
  removeAfterExit(dirs: string[]): boolean {
    const stdin = this.#child.stdin;
    if (this.#closed || !stdin || stdin.writableLength > 0) return false;
    const lines = dirs.map((d) => helperLine('r', '', d));
    if (lines.some((l) => l === undefined)) return false;
    try {
      stdin.write(lines.join(''));
      return true;
    } catch {
      return false;
    }
  }

  get alive(): boolean {
    return !this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#child.stdin?.end();
    if (this.#userNsFd !== undefined) {
      try { fs.closeSync(this.#userNsFd); } catch { /* already closed */ }
      this.#userNsFd = undefined;
    }
    for (const w of this.#waiting.splice(0)) w(undefined);
  }

  async #request(line: string | undefined, what: string): Promise<void> {
    if (!line) throw new SandboxError('INVALID_ARGUMENT', `cannot ${what}: the path contains '|' or a line break`);
    if (this.#closed) throw new SandboxError('BACKEND_UNAVAILABLE', `cannot ${what}: the namespace helper has exited${this.#reason()}`);
    this.#busy();
    const answer = this.#nextLine();
    this.#child.stdin!.write(line);
    const status = await answer;
    if (this.#waiting.length === 0) this.#idle();
    if (status === undefined) throw new SandboxError('BACKEND_UNAVAILABLE', `cannot ${what}: the namespace helper has exited${this.#reason()}`);
    if (status !== '0') throw new SandboxError('BACKEND_UNAVAILABLE', `cannot ${what} (exit ${status})${this.#reason()}`);
  }

  async #expect(word: string): Promise<void> {
    const line = await this.#nextLine();
    if (line !== word) throw new Error(`the namespace helper did not start (${line === undefined ? 'it exited' : `it said ${JSON.stringify(line)}`})${this.#reason()}`);
  }

  #nextLine(): Promise<string | undefined> {
    if (this.#unread.length > 0) return Promise.resolve(this.#unread.shift());
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #reason(): string {
    const err = this.#stderr.trim();
    return err ? `: ${err.split('\n').slice(-2).join('; ')}` : '';
  }

  #listen(): void {
    const out = this.#child.stdout!;
    out.setEncoding('utf8');
    out.on('data', (s: string) => {
      this.#buffer += s;
      for (let i = this.#buffer.indexOf('\n'); i >= 0; i = this.#buffer.indexOf('\n')) {
        const line = this.#buffer.slice(0, i);
        this.#buffer = this.#buffer.slice(i + 1);
        const waiter = this.#waiting.shift();
        if (waiter) waiter(line);
        else this.#unread.push(line);
      }
    });
    this.#child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      this.#stderr = (this.#stderr + s).slice(-2048);
    });
    this.#child.stdin!.on('error', () => { /* it exited: close() below answers the waiting requests */ });
    this.#child.once('close', () => this.close());
  }

  // The helper must not keep the process alive when nothing waits for it, and must while something does.
  #idle(): void {
    this.#child.unref();
    for (const s of [this.#child.stdout, this.#child.stderr, this.#child.stdin] as Array<Readable | null>) (s as unknown as { unref?(): void })?.unref?.();
  }

  #busy(): void {
    this.#child.ref();
    for (const s of [this.#child.stdout, this.#child.stderr, this.#child.stdin] as Array<Readable | null>) (s as unknown as { ref?(): void })?.ref?.();
  }
}

/** Waits (up to 20 ms, on this thread) until process `pid` is in a user namespace other than ours. */
function userNsSwitched(pid: number): boolean {
  let own: string;
  try {
    own = fs.readlinkSync('/proc/self/ns/user');
  } catch {
    return false;
  }
  const end = Date.now() + 20;
  while (Date.now() < end) {
    let theirs: string;
    try {
      theirs = fs.readlinkSync(`/proc/${pid}/ns/user`);
    } catch {
      return false; // it exited
    }
    if (theirs !== own) return true;
  }
  return false;
}

function runTool(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: HOST_ENV, timeout: START_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}
