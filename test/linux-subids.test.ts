// An unprivileged caller with /etc/subuid and /etc/subgid ranges sees the image's own uids and gids, as
// rootless podman does: a throwaway user gets a range, runs the backend (a bundled runner started with
// setpriv), and its containers show and enforce the owners 0, 1000 and 65534 of the image, chown and su
// work, and nothing outside the map is reachable. /etc/subuid, /etc/subgid and the user are restored.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOwnersImage, bundleRunner, busyboxAvailable, busyboxEntries, entriesOnceRemoved, layerTar, OWNERS_IMAGE_LISTING, ownersOf, runnerPrelude, tempDir, writeOciLayout } from './helpers/linux-images.ts';

const work = tempDir('wasmbox-linux-subids-');
const COUNT = 65536;
/** A range far from any real account's ids (checked against the files' other lines below). */
const START = 2_000_000_000 + Math.floor(Math.random() * 1000) * COUNT;
const OUTSIDER = 12_345; // a host uid neither the caller's nor in its range
const user = `wbx${randomBytes(4).toString('hex')}`;
const ourLine = `${user}:${START}:${COUNT}`;
let skipReason = busyboxAvailable();
let runner = '';
let ownersDir = '';
let wideDir = '';
let vaultDir = '';
let uid = -1;
let gid = -1;
let userAdded = false;

const RUNNER = (root: string) => `
${runnerPrelude(root)}
import { resolvePath } from '${root}/src/fs/resolve.ts';
import { createHash } from 'node:crypto';
const wide = await openOciDir(process.argv[4]);
const vault = await openOciDir(process.argv[6]);
const spec = (script, o = {}) => ({ argv: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/data', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, user: 'app', ...o });
const out = { probe: await backend.probe(image), ids: await backend.idMapping(), runs: {} };
async function run(name, s, img = image) {
  try {
    out.runs[name] = await runToEnd(backend, img, s);
  } catch (e) {
    out.runs[name] = { error: { code: e.code, message: e.message } };
  }
}
const shared = [{ guest: '/shared', source: { type: 'host', path: process.argv[5] }, mode: 'rw' }];
if (out.probe.ok) {
  await run('app', spec([
    'id -u; id -g',
    'ls -ln /data',
    'echo more >> app-file && echo app-file:ok',
    'echo more >> group-file && echo group-file:ok',
    'echo more >> root-file 2>/dev/null || echo root-file:denied',
    'cat root-private 2>/dev/null || echo root-private:denied',
    'mkdir -p /home/app/deep/er && echo x > /home/app/deep/er/f && chmod 500 /home/app/deep/er && echo made',
    'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status | tr -d "\\t"',
  ].join('; ')));
  await run('root', spec([
    'ls -ln /data',
    'echo --',
    'chown 1000:1000 root-file && stat -c %u:%g root-file',
    'chown 65534:50 app-file && stat -c %u:%g app-file',
    'chown ${COUNT + 1} nobody-file 2>/dev/null || echo chown-outside:denied',
    'stat -c %u nobody-file',
    '/bin/busybox su -s /bin/sh -c "id -u; id -g; echo x >> /data/root-file && echo su-write:ok" app 2>&1',
    'echo --',
    'cat /proc/self/uid_map /proc/self/gid_map',
    'echo --',
    'ls -ln /shared',
    'cat /shared/root-secret 2>/dev/null || echo root-secret:denied',
    'cat /shared/outsider-secret 2>/dev/null || echo outsider-secret:denied',
    'echo hi >> /shared/outsider-open 2>/dev/null || echo outsider-open:denied',
    'cat /shared/sub-secret',
    'chown 0 /shared/outsider-open 2>/dev/null || echo chown-host:denied',
    'echo "0 0 1" > /proc/self/uid_map 2>/dev/null || echo uid-map:denied',
    'unshare -U true 2>/dev/null || echo userns:denied',
    'chmod 666 /dev/null 2>/dev/null || echo null-node:denied', // the host's node (0666 already): not the container's to change
    'grep CapEff /proc/self/status | tr -d "\\t"',
  ].join('; '), { user: undefined, mounts: shared }));
  await run('readonly', spec('id -u; ls -ln /data; echo more >> app-file 2>/dev/null || echo read-only', { readOnlyRoot: true }));
  await run('wide', spec('true'), wide);
  // what the container's users wrote, read back through fs() after exit
  try {
    const c = await backend.create(image, spec('echo mine > /home/app/mine && mkdir /home/app/open && echo o > /home/app/open/o; (echo new > /etc/hostname) 2>/dev/null; true'));
    await c.start();
    await c.wait();
    const vfs = await c.fs();
    const read = (p) => {
      try {
        const h = resolvePath(vfs, vfs.root(), p, { followFinal: true, escape: 'clamp' }).node;
        const buf = new Uint8Array(64);
        return new TextDecoder().decode(buf.subarray(0, vfs.read(h, buf, 0)));
      } catch (e) {
        return \`\${e.code ?? e.errno}\`;
      }
    };
    out.fs = { mine: read('/home/app/mine'), open: read('/home/app/open/o'), hostname: read('/etc/hostname'), passwd: read('/etc/passwd').slice(0, 5) };
    c.remove();
  } catch (e) {
    out.fs = { error: e.message };
  }
  // directories only their owner (1000, 65534) may open, in the image and made by the container's users
  out.private = await privateFs(spec([
    '/bin/busybox su -s /bin/sh -c "mkdir -m 700 /home/app/private && echo secret > /home/app/private/s && chmod 600 /home/app/private/s && mkdir /home/app/private/sub && echo deep > /home/app/private/sub/d && ln -s s /home/app/private/link" app',
    'mkdir -m 700 /nobody-private && echo n > /nobody-private/n && /bin/busybox head -c 3000000 /dev/urandom > /nobody-private/big && chmod 600 /nobody-private/* && chown -R 65534:65534 /nobody-private',
    'rm /vault/gone && echo added > /vault/added && chown 1000:1000 /vault/added && chmod 600 /vault/added',
    'echo y > /vault/inner/y && chown 65534:65534 /vault/inner/y && chmod 600 /vault/inner/y',
    '/bin/busybox sha256sum /nobody-private/big',
  ].join(' && '), { user: undefined, cwd: '/' }));
  out.privateReadOnly = await privateFs(spec('true', { user: undefined, cwd: '/', readOnlyRoot: true }));
}
async function privateFs(s) {
  try {
    const c = await backend.create(vault, s);
    await c.start();
    const [stdout, status] = await Promise.all([new Response(c.stdout).text(), c.wait(), new Response(c.stderr).text()]);
    const vfs = await c.fs();
    const at = (p, followFinal = false) => {
      const node = resolvePath(vfs, vfs.root(), p, { followFinal, escape: 'clamp' }).node;
      if (node === undefined) throw Object.assign(new Error(p), { code: 'ENOENT' });
      return node;
    };
    const attempt = (f) => { try { return f(); } catch (e) { return \`\${e.code ?? e.errno ?? e.message}\`; } };
    const readAll = (p) => attempt(() => {
      const h = at(p, true);
      const chunks = [];
      for (let pos = 0; ; ) {
        const buf = new Uint8Array(65536);
        const n = vfs.read(h, buf, pos);
        if (n === 0) break;
        chunks.push(buf.subarray(0, n));
        pos += n;
      }
      return Buffer.concat(chunks);
    });
    const text = (p) => { const b = readAll(p); return typeof b === 'string' ? b : b.toString('utf8'); };
    const files = ['/home/app/private/s', '/home/app/private/sub/d', '/home/app/private/link', '/nobody-private/n', '/vault/v', '/vault/nob', '/vault/added', '/vault/inner/x', '/vault/inner/y', '/vault/gone'];
    const owners = ['/', '/etc/passwd', '/home/app', '/home/app/private', '/home/app/private/s', '/nobody-private', '/nobody-private/n', '/vault', '/vault/v', '/vault/nob', '/vault/added', '/vault/inner', '/vault/inner/y'];
    const big = readAll('/nobody-private/big');
    return {
      status, stdout,
      dirs: Object.fromEntries(['/home/app/private', '/nobody-private', '/vault', '/vault/inner'].map((d) => [d, attempt(() => vfs.readdir(at(d)).map((e) => e.name).sort().join(' '))])),
      files: Object.fromEntries(files.map((f) => [f, text(f)])),
      owners: Object.fromEntries(owners.map((p) => [p, attempt(() => { const st = vfs.stat(at(p)); return \`\${st.uid}:\${st.gid}:\${st.mode.toString(8)}\`; })])),
      link: attempt(() => vfs.readlink(at('/home/app/private/link'))),
      big: typeof big === 'string' ? big : createHash('sha256').update(big).digest('hex'),
    };
  } catch (e) {
    return { error: e.message };
  }
}
console.log(JSON.stringify(out));
`;

/** Removes our lines from a subordinate id file, whatever else changed in it meanwhile. */
function dropOurLine(file: string): void {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const kept = text.split('\n').filter((l) => l !== ourLine);
    if (kept.length !== text.split('\n').length) fs.writeFileSync(file, kept.join('\n'));
  } catch { /* the file is gone: nothing of ours is left in it */ }
}

function restoreHost(): void {
  dropOurLine('/etc/subuid');
  dropOurLine('/etc/subgid');
  if (userAdded) {
    spawnSync('userdel', [user], { stdio: 'ignore' });
    userAdded = false;
  }
}

beforeAll(async () => {
  if (skipReason) return;
  if (process.getuid?.() !== 0) {
    skipReason = 'the test makes a user and gives it /etc/subuid ranges, which needs root';
    return;
  }
  for (const [tool, pkg] of [['setpriv', 'util-linux'], ['useradd', 'passwd'], ['newuidmap', 'uidmap'], ['newgidmap', 'uidmap']]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) {
      skipReason = `${tool} is missing (apt-get install ${pkg})`;
      return;
    }
  }
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const taken = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    for (const l of taken.split('\n')) {
      const [, s, c] = l.split(':').map(Number);
      if (s! < START + COUNT && START < s! + c!) throw new Error(`${file} already gives ${l}, which overlaps the test's range`);
    }
  }
  // (restored in afterAll, and at exit should the run be cut short)
  process.once('exit', restoreHost);
  execFileSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', '-d', '/nonexistent', user]);
  userAdded = true;
  uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  fs.appendFileSync('/etc/subuid', `${ourLine}\n`);
  fs.appendFileSync('/etc/subgid', `${ourLine}\n`);

  fs.chmodSync(work, 0o755);
  ownersDir = await buildOwnersImage(path.join(work, 'owners'));
  // a file of uid COUNT + 1: beyond the range
  wideDir = writeOciLayout(path.join(work, 'wide'), [await layerTar([...busyboxEntries(), { type: 'file', name: 'far', data: 'x', uid: COUNT + 1 }])], { Cmd: ['sh'] });
  // directories and files only their owners (1000, 65534) may open: materialised as host ids the caller cannot act as
  vaultDir = writeOciLayout(path.join(work, 'vault'), [await layerTar([
    ...busyboxEntries(),
    { type: 'dir', name: 'vault', mode: 0o700, uid: 1000, gid: 1000 },
    { type: 'file', name: 'vault/v', data: 'vault\n', mode: 0o600, uid: 1000, gid: 1000 },
    { type: 'file', name: 'vault/nob', data: 'nob\n', mode: 0o600, uid: 65534, gid: 65534 },
    { type: 'file', name: 'vault/gone', data: 'gone\n', mode: 0o644, uid: 1000, gid: 1000 },
    { type: 'dir', name: 'vault/inner', mode: 0o700, uid: 65534, gid: 65534 },
    { type: 'file', name: 'vault/inner/x', data: 'x\n', mode: 0o600, uid: 65534, gid: 65534 },
  ])], { Cmd: ['sh'] });
  execFileSync('chmod', ['-R', 'a+rX', ownersDir, wideDir, vaultDir]);
  runner = await bundleRunner(work, RUNNER(path.resolve(import.meta.dirname, '..')), { uid, gid });
  // a crashed process's container, whose user (1000) left a file the caller alone cannot remove
  const stale = path.join(work, 'home', 'linux', 'containers', 'stale');
  fs.mkdirSync(path.join(stale, 'upper', 'home', 'app'), { recursive: true });
  fs.writeFileSync(path.join(stale, 'upper', 'home', 'app', 'f'), 'x');
  fs.writeFileSync(path.join(stale, 'owner'), '2147483647'); // no such process
  execFileSync('chown', ['-R', `${uid}:${gid}`, path.join(work, 'home', 'linux')]);
  execFileSync('chown', ['-R', `${START + 999}:${START + 999}`, path.join(stale, 'upper', 'home', 'app')]);
  // the host directory the container gets: files of host root, of an outsider, of the range
  const shared = path.join(work, 'shared');
  fs.mkdirSync(shared, { mode: 0o777 });
  fs.chmodSync(shared, 0o777);
  const put = (name: string, owner: number, mode: number) => {
    const f = path.join(shared, name);
    fs.writeFileSync(f, `${name}\n`);
    fs.chownSync(f, owner, owner);
    fs.chmodSync(f, mode);
  };
  put('root-secret', 0, 0o600);
  put('outsider-secret', OUTSIDER, 0o600);
  put('outsider-open', OUTSIDER, 0o644);
  put('sub-secret', START + 999, 0o600); // container uid 1000: root of the namespace reads it
}, 120_000);

afterAll(() => {
  restoreHost();
  process.off('exit', restoreHost);
  fs.rmSync(work, { recursive: true, force: true });
});

interface PrivateFs {
  status?: { code: number; reason: string }; stdout?: string; error?: string; link?: string; big?: string;
  dirs?: Record<string, string>; files?: Record<string, string>; owners?: Record<string, string>;
}

interface Run { stdout?: string; stderr?: string; status?: { code: number; reason: string }; error?: { code: string; message: string } }

function runAs(who: string[], ociDir: string, home: string): { probe: { ok: boolean; reason?: string }; ids: { mode: string; detail: string }; runs: Record<string, Run>; fs?: Record<string, string>; private?: PrivateFs; privateReadOnly?: PrivateFs } {
  const r = spawnSync('setpriv', [...who, '--clear-groups', process.execPath, runner, ociDir, home, wideDir, path.join(work, 'shared'), vaultDir], {
    encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home }, timeout: 120_000,
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}


describe('linux backend: an unprivileged caller with /etc/subuid ranges', () => {
  it('sees and enforces the image\'s owners, chowns and switches users within its range, reaches nothing outside it', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const home = path.join(work, 'home');
    const out = runAs([`--reuid=${uid}`, `--regid=${gid}`], ownersDir, home);
    if (!out.probe.ok) {
      expect(out.probe.reason).toMatch(/user namespaces|overlayfs/);
      return ctx.skip(`unprivileged containers unavailable here: ${out.probe.reason}`);
    }
    expect(out.ids.mode, out.ids.detail).toBe('subids');
    expect(out.ids.detail).toContain(`uids 0 -> ${uid}, 1..${COUNT} -> ${START}..${START + COUNT - 1}`);
    const { app, root, readonly, wide } = out.runs as Record<string, Run>;

    // a non-root USER: the image's owners, and exactly the permissions they give
    expect(app!.status, JSON.stringify(app)).toEqual({ code: 0, reason: 'exit' });
    const a = app!.stdout!.split('\n');
    expect(a.slice(0, 2)).toEqual(['1000', '1000']);
    expect(ownersOf(app!.stdout!)).toEqual(OWNERS_IMAGE_LISTING);
    for (const l of ['app-file:ok', 'group-file:ok', 'root-file:denied', 'root-private:denied', 'made', 'CapEff:0000000000000000', 'NoNewPrivs:1', 'Seccomp:2']) {
      expect(a).toContain(l);
    }

    // root: chown to ids of the range, not beyond; su to a user of the image
    expect(root!.status, JSON.stringify(root)).toEqual({ code: 0, reason: 'exit' });
    const [before, changes, maps, shared] = root!.stdout!.split('--\n');
    expect(ownersOf(before!)).toEqual(OWNERS_IMAGE_LISTING);
    expect(changes!.trim().split('\n')).toEqual(['1000:1000', '65534:50', 'chown-outside:denied', '65534', '1000', '1000', 'su-write:ok']);
    // the map is podman's: 0 -> the caller, 1..COUNT -> the range, and nothing else
    expect(maps!.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual([
      `0 ${uid} 1`, `1 ${START} ${COUNT}`, `0 ${gid} 1`, `1 ${START} ${COUNT}`,
    ]);
    // host files: root's and the outsider's show as 65534 and stay closed, even to the container's root
    expect(ownersOf(shared!)).toEqual(['65534:65534 outsider-open', '65534:65534 outsider-secret', '65534:65534 root-secret', '1000:1000 sub-secret']);
    for (const l of ['root-secret:denied', 'outsider-secret:denied', 'outsider-open:denied', 'sub-secret', 'chown-host:denied', 'uid-map:denied', 'userns:denied', 'null-node:denied', 'CapEff:00000000a80425fb']) { // (docker's default set)
      expect(shared!.split('\n')).toContain(l);
    }
    expect(fs.statSync(path.join(work, 'shared', 'outsider-open')).uid).toBe(OUTSIDER);

    // a read-only root shows the same owners
    expect(readonly!.stdout!.split('\n')[0]).toBe('1000');
    expect(ownersOf(readonly!.stdout!)).toEqual(OWNERS_IMAGE_LISTING);
    expect(readonly!.stdout).toContain('read-only\n');

    // fs() after exit reads what the container's user wrote (files of uid 1000: the host's start+999), not what it could not
    expect(out.fs).toEqual({ mine: 'mine\n', open: 'o\n', hostname: 'image-hostname\n', passwd: 'root:' });
    // directories and files of mode 0700/0600 of the container's users 1000 and 65534 (host ids of the
    // range, which the caller cannot open): fs() lists them, reads them and shows the container's owners
    const p = out.private!;
    expect(p.status, JSON.stringify(p)).toEqual({ code: 0, reason: 'exit' });
    expect(p.dirs).toEqual({
      '/home/app/private': 'link s sub', '/nobody-private': 'big n', '/vault': 'added inner nob v', '/vault/inner': 'x y',
    });
    expect(p.files).toEqual({
      '/home/app/private/s': 'secret\n', '/home/app/private/sub/d': 'deep\n', '/home/app/private/link': 'secret\n', '/nobody-private/n': 'n\n',
      '/vault/v': 'vault\n', '/vault/nob': 'nob\n', '/vault/added': 'added\n', '/vault/inner/x': 'x\n', '/vault/inner/y': 'y\n', '/vault/gone': 'ENOENT',
    });
    expect(p.owners).toEqual({
      '/': '0:0:755', '/etc/passwd': '0:0:644', '/home/app': '1000:1000:755', '/home/app/private': '1000:1000:700', '/home/app/private/s': '1000:1000:600',
      '/nobody-private': '65534:65534:700', '/nobody-private/n': '65534:65534:600', '/vault': '1000:1000:700', '/vault/v': '1000:1000:600',
      '/vault/nob': '65534:65534:600', '/vault/added': '1000:1000:600', '/vault/inner': '65534:65534:700', '/vault/inner/y': '65534:65534:600',
    });
    expect(p.link).toBe('s');
    // (3 MB of random bytes, read back in 64 KiB pieces, match what the container hashed)
    expect(p.stdout!.split(/\s+/)[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(p.big).toBe(p.stdout!.split(/\s+/)[0]);
    // a read-only root: the image's private files alone, the same owners
    const r = out.privateReadOnly!;
    expect(r.status, JSON.stringify(r)).toEqual({ code: 0, reason: 'exit' });
    expect(r.files!['/vault/v']).toBe('vault\n');
    expect(r.files!['/vault/inner/x']).toBe('x\n');
    expect(r.files!['/vault/gone']).toBe('gone\n');
    expect(r.dirs!['/vault']).toBe('gone inner nob v');
    expect(r.owners!['/vault/nob']).toBe('65534:65534:600');
    expect(r.owners!['/vault/inner']).toBe('65534:65534:700');
    expect(r.owners!['/etc/passwd']).toBe('0:0:644');
    // an image with a uid beyond the range is refused with the reason, not run with wrong owners
    expect(wide!.error?.code).toBe('BACKEND_UNAVAILABLE');
    expect(wide!.error?.message).toMatch(new RegExp(`uid ${COUNT + 1} .*/etc/subuid`));

    // on the host, the image's uid k is the range's start + k - 1
    const layers = fs.readdirSync(path.join(home, 'linux')).filter((d) => d.startsWith('layers-'));
    expect(layers).toHaveLength(1);
    const layersDir = path.join(home, 'linux', layers[0]!);
    const owners = fs.readdirSync(layersDir).map((l) => path.join(layersDir, l, 'data')).find((d) => fs.existsSync(d))!;
    expect(fs.statSync(path.join(owners, 'app-file')).uid).toBe(START + 999);
    expect(fs.statSync(path.join(owners, 'nobody-file')).gid).toBe(START + 65533);
    expect(fs.statSync(path.join(owners, 'root-file')).uid).toBe(uid);
    // what the container's users wrote (a 0500 directory of uid 1000 among it, a crashed run's files) is gone
    expect(fs.readdirSync(path.join(home, 'linux', 'containers'))).toEqual([]);
    // (what the runner kept for fs() is removed by its namespace helper just after the runner exits)
    expect(await entriesOnceRemoved(path.join(home, 'linux', 'kept'))).toEqual([]);
  }, 180_000);

  it('without a range (nobody has none) the caller keeps the single-uid map: every file shows as the container user\'s', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const home = path.join(work, 'home-nobody');
    fs.mkdirSync(home, { mode: 0o755 });
    fs.chownSync(home, 65534, 65534);
    const out = runAs(['--reuid=65534', '--regid=65534'], ownersDir, home);
    if (!out.probe.ok) return ctx.skip(`unprivileged containers unavailable here: ${out.probe.reason}`);
    expect(out.ids.mode).toBe('single');
    expect(out.ids.detail).toMatch(/no range/);
    const app = out.runs.app!;
    expect(app.status, JSON.stringify(app)).toEqual({ code: 0, reason: 'exit' });
    expect(app.stdout!.split('\n').slice(0, 2)).toEqual(['1000', '1000']);
    // (the image is materialised as the caller's, which bwrap maps to the container's one uid)
    expect(ownersOf(app.stdout!)).toEqual(OWNERS_IMAGE_LISTING.map((l) => `1000:1000 ${l.split(' ')[1]}`));
    expect(out.runs.root!.stdout).toContain('chown-outside:denied');
  }, 180_000);
});
