// End to end through the built CLI (node bin/wasmbox.cjs), each test with its own --home store.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { extract } from 'tar-stream';
import { Layout, OCI, dockerSaveFiles, enc, filesToTar, hex, sha, tagged, type Desc } from './helpers/image-fixtures.ts';
import { ensureBuilt, dirListing, cliBin, repoRoot } from './helpers/cli.ts';

const bin = cliBin;

interface Run { status: number | null; stdout: string; stderr: string }

let tmp: string;
let home: string;
const wasmbox = (...args: string[]): Run => {
  const r = spawnSync(process.execPath, [bin, '--home', home, ...args], { encoding: 'utf8', cwd: tmp });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
};
const ok = (...args: string[]): string => {
  const r = wasmbox(...args);
  if (r.status !== 0) throw new Error(`wasmbox ${args.join(' ')} -> ${r.status}\n${r.stderr}`);
  return r.stdout;
};

async function tarMembers(bytes: Uint8Array): Promise<Map<string, { type: string; data: Uint8Array }>> {
  const out = new Map<string, { type: string; data: Uint8Array }>();
  const ex = extract();
  const done = new Promise<void>((res, rej) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Uint8Array[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Uint8Array));
      stream.on('end', () => {
        out.set(h.name.replace(/^\.\//, ''), { type: h.type, data: Buffer.concat(chunks) });
        next();
      });
    });
    ex.on('finish', () => res());
    ex.on('error', rej);
  });
  ex.end(Buffer.from(bytes));
  await done;
  return out;
}

/** A two-layer linux image: the upper layer deletes a file and makes a directory opaque. */
async function appImage(tag = 'app:1.0', extra = '') {
  const layout = new Layout();
  const img = await layout.image({
    layers: [
      {
        entries: [
          { path: 'etc/', type: 'directory' },
          { path: 'etc/keep', data: 'kept' + extra },
          { path: 'etc/gone', data: 'deleted by a whiteout' },
          { path: 'var/', type: 'directory' },
          { path: 'var/old', data: 'hidden by the opaque marker' },
        ],
        compression: 'gzip',
      },
      {
        entries: [
          { path: 'etc/.wh.gone', data: '' },
          { path: 'var/', type: 'directory' },
          { path: 'var/.wh..wh..opq', data: '' },
          { path: 'var/new', data: 'upper' + extra },
        ],
        compression: 'none',
      },
    ],
  });
  layout.finish([tagged(img.manifest, tag)]);
  return { layout, img };
}

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-cli-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  home = mkdtempSync(join(tmp, 'home-'));
});

describe('wasmbox image commands', () => {
  it('load -> images -> inspect -> save (both formats) -> rmi -> load the saved archives -> export', async () => {
    const { layout, img } = await appImage();
    const archive = join(tmp, 'app.tar');
    writeFileSync(archive, await layout.toTar());

    const loaded = ok('load', '-i', archive);
    expect(loaded).toContain('Loaded image: app:1.0');
    expect(loaded).toContain(img.manifest.digest);

    const table = ok('images').trim().split('\n');
    expect(table[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+PLATFORM\s+SIZE\s+CREATED$/);
    expect(table[1]).toMatch(new RegExp(`^app\\s+1\\.0\\s+${hex(img.config.digest).slice(0, 12)}\\s+linux/amd64\\s+\\S+B\\s+`));
    const json = JSON.parse(ok('images', '--format', 'json').trim());
    expect(json).toMatchObject({ Repository: 'app', Tag: '1.0', ID: hex(img.config.digest).slice(0, 12), Digest: img.manifest.digest });
    expect(ok('images', '-q').trim()).toBe(hex(img.config.digest).slice(0, 12));

    const [inspected] = JSON.parse(ok('inspect', 'app:1.0'));
    expect(inspected.Id).toBe(img.config.digest);
    expect(inspected.RepoTags).toEqual(['app:1.0']);
    expect(inspected.RepoDigests).toEqual([`app@${img.manifest.digest}`]);
    expect(inspected.Os).toBe('linux');
    expect(inspected.Architecture).toBe('amd64');
    expect(inspected.RootFS.Layers).toEqual(img.layers.map((l) => l.diffId));
    // by image ID prefix too
    expect(JSON.parse(ok('inspect', hex(img.config.digest).slice(0, 8)))[0].Id).toBe(img.config.digest);

    const oci = join(tmp, 'saved.oci.tar');
    const docker = join(tmp, 'saved.docker.tar');
    ok('save', 'app:1.0', '-o', oci);
    ok('save', 'app:1.0', '-o', docker, '--format', 'docker-archive');
    const ociMembers = await tarMembers(readFileSync(oci));
    const ociIndex = JSON.parse(Buffer.from(ociMembers.get('index.json')!.data).toString());
    expect(ociIndex.manifests).toHaveLength(1);
    expect(ociIndex.manifests[0].digest).toBe(img.manifest.digest);
    expect(ociIndex.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('app:1.0');
    for (const l of layout.layers) expect(sha(ociMembers.get(`blobs/sha256/${hex(sha(l.blob))}`)!.data)).toBe(sha(l.blob));

    const dockerMembers = await tarMembers(readFileSync(docker));
    const manifestJson = JSON.parse(Buffer.from(dockerMembers.get('manifest.json')!.data).toString());
    expect(manifestJson).toHaveLength(1);
    expect(manifestJson[0].RepoTags).toEqual(['app:1.0']);
    expect(manifestJson[0].Config).toBe(`blobs/sha256/${hex(img.config.digest)}`);
    // docker-archive layers are the uncompressed tars, named by diffID
    expect(manifestJson[0].Layers).toEqual(img.layers.map((l) => `blobs/sha256/${hex(l.diffId)}`));
    for (const l of img.layers) expect(sha(dockerMembers.get(`blobs/sha256/${hex(l.diffId)}`)!.data)).toBe(l.diffId);
    expect(JSON.parse(Buffer.from(dockerMembers.get('repositories')!.data).toString())).toEqual({ app: { '1.0': hex(img.layers[1]!.diffId) } });

    const rmi = ok('rmi', 'app:1.0');
    expect(rmi).toContain('Untagged: app:1.0');
    expect(rmi).toContain(`Deleted: ${img.manifest.digest}`);
    expect(readdirSync(join(home, 'blobs/sha256'))).toEqual([]);
    expect(JSON.parse(readFileSync(join(home, 'index.json'), 'utf8')).manifests).toEqual([]);

    expect(ok('load', '-i', oci)).toContain(`Loaded image: app:1.0\nDigest: ${img.manifest.digest}`);
    ok('rmi', 'app:1.0');
    expect(ok('load', '-i', docker)).toContain('Loaded image: app:1.0');
    expect(JSON.parse(ok('inspect', 'app:1.0'))[0].Id).toBe(img.config.digest);
    expect(JSON.parse(ok('inspect', 'app:1.0'))[0].RootFS.Layers).toEqual(img.layers.map((l) => l.diffId));

    const rootfs = join(tmp, 'rootfs.tar');
    ok('export', 'app:1.0', '-o', rootfs);
    const files = await tarMembers(readFileSync(rootfs));
    expect(Buffer.from(files.get('etc/keep')!.data).toString()).toBe('kept');
    expect(Buffer.from(files.get('var/new')!.data).toString()).toBe('upper');
    expect(files.get('var/')?.type ?? files.get('var')?.type).toBe('directory');
    expect(files.has('etc/gone')).toBe(false);
    expect(files.has('var/old')).toBe(false);
    expect([...files.keys()].some((n) => n.includes('.wh.'))).toBe(false);
  });

  it('tag adds a name; rmi by name keeps the image until its last name goes; rmi by ID needs -f with several names', async () => {
    const { layout, img } = await appImage('base:1');
    const archive = join(tmp, 'tag.tar');
    writeFileSync(archive, await layout.toTar());
    ok('load', '-i', archive);
    ok('tag', 'base:1', 'other/name:v2');
    ok('tag', 'base:1', 'plain');
    const rows = ok('images').trim().split('\n').slice(1).map((r) => r.split(/\s+/).slice(0, 2).join(':'));
    expect(rows.sort()).toEqual(['base:1', 'other/name:v2', 'plain:latest']);
    expect(JSON.parse(ok('inspect', 'plain'))[0].RepoTags.sort()).toEqual(['base:1', 'other/name:v2', 'plain:latest']);
    const id = hex(img.config.digest).slice(0, 12);
    const forced = wasmbox('rmi', id);
    expect(forced.status).toBe(125);
    expect(forced.stderr).toMatch(/^wasmbox: .*must be forced/);
    expect(ok('rmi', 'base:1')).not.toContain('Deleted:');
    expect(readdirSync(join(home, 'blobs/sha256')).length).toBeGreaterThan(0);
    const r = ok('rmi', '-f', id);
    expect(r).toContain('Untagged: other/name:v2');
    expect(r).toContain('Untagged: plain:latest');
    expect(readdirSync(join(home, 'blobs/sha256'))).toEqual([]);
  });

  it('names images from the archive: RepoTags of a docker save, ref.name tags under the file name, --tag', async () => {
    const files = await dockerSaveFiles([{ repoTags: ['one:a'] }, { repoTags: ['two:b', 'two:c'], spec: { cmd: ['/x'] } }], 'legacy');
    const multi = join(tmp, 'multi.tar');
    writeFileSync(multi, await filesToTar(files));
    const out = ok('load', '-i', multi);
    expect(out).toContain('Loaded image: one:a');
    expect(out).toContain('Loaded image: two:b');
    expect(out).toContain('Loaded image: two:c');

    const { layout } = await appImage('v7');
    const bare = join(tmp, 'My_Image.tar');
    writeFileSync(bare, await layout.toTar());
    expect(ok('load', '-i', bare)).toContain('Loaded image: my_image:v7');
    expect(ok('load', '-i', bare, '--tag', 'renamed:x')).toContain('Loaded image: renamed:x');
    const dir = await layout.writeDir(join(tmp, 'layoutdir'));
    expect(ok('load', '-i', dir)).toContain('Loaded image: layoutdir:v7');
  });

  it('load reads an archive on stdin, gzip-compressed too; save writes to stdout when it is not a terminal', () => {
    const archive = readFileSync(join(repoRoot, 'images/hello.tar'));
    const raw = (args: string[], input?: Uint8Array) =>
      spawnSync(process.execPath, [cliBin, '--home', home, ...args], { input: input ?? Buffer.alloc(0), maxBuffer: 64 << 20 });
    const plain = raw(['load'], archive);
    expect(plain.status, plain.stderr.toString()).toBe(0);
    expect(plain.stdout.toString()).toContain('Loaded image: hello:latest');
    ok('rmi', 'hello');
    const gz = raw(['load'], gzipSync(archive));
    expect(gz.stdout.toString()).toContain('Loaded image: hello:latest');
    const gzFile = join(tmp, 'hello.tar.gz');
    writeFileSync(gzFile, gzipSync(archive));
    expect(ok('load', '-i', gzFile, '--tag', 'from-gz:1')).toContain('Loaded image: from-gz:1');
    // save to stdout, loaded back into another store
    const saved = raw(['save', 'hello', '--format', 'docker-archive']);
    expect(saved.status, saved.stderr.toString()).toBe(0);
    const other = join(tmp, `other-${Math.random().toString(16).slice(2)}`);
    const back = spawnSync(process.execPath, [cliBin, '--home', other, 'load'], { input: saved.stdout });
    expect(back.stdout.toString()).toContain('Loaded image: hello:latest');
    // nothing left behind in the store's tmp directory
    expect(readdirSync(join(home, '.wasmbox', 'tmp'))).toEqual([]);
  });

  it('loads a bare .wasm module as a wasi/wasm image', () => {
    const wasm = join(tmp, 'tiny.wasm');
    writeFileSync(wasm, new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    expect(ok('load', '-i', wasm)).toContain('Loaded image: tiny:latest');
    expect(ok('images')).toMatch(/tiny\s+latest\s+[0-9a-f]{12}\s+wasi\/wasm/);
  });

  it('round-trips a wasm artifact (raw application/wasm layer) through save, and refuses it as a docker archive', async () => {
    const l = new Layout();
    const module = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    const layer = l.blob('application/wasm', module);
    const config = l.json('application/vnd.wasm.config.v0+json', { architecture: 'wasm', os: 'wasip1' });
    const manifest = l.json(OCI.manifest, { schemaVersion: 2, mediaType: OCI.manifest, config, layers: [layer] });
    l.finish([tagged(manifest, 'artifact:1')]);
    const file = join(tmp, 'artifact.tar');
    writeFileSync(file, await l.toTar());
    expect(ok('load', '-i', file)).toContain(`Loaded image: artifact:1\nDigest: ${manifest.digest}`);
    const saved = join(tmp, 'artifact-saved.tar');
    ok('save', 'artifact:1', '-o', saved);
    ok('rmi', 'artifact:1');
    expect(ok('load', '-i', saved)).toContain(manifest.digest);
    const r = wasmbox('save', 'artifact:1', '-o', join(tmp, 'artifact-docker.tar'), '--format', 'docker-archive');
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/^wasmbox: a docker archive holds only tar layers/);
    expect(existsSync(join(tmp, 'artifact-docker.tar'))).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('finds the store from --home, else $WASMBOX_HOME, else $XDG_DATA_HOME/wasmbox, else ~/.local/share/wasmbox', () => {
    const wasm = join(tmp, 'where.wasm');
    writeFileSync(wasm, new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    const fakeHome = mkdtempSync(join(tmp, 'user-'));
    const base: NodeJS.ProcessEnv = { ...process.env, HOME: fakeHome };
    delete base.WASMBOX_HOME;
    delete base.XDG_DATA_HOME;
    const cli = (env: NodeJS.ProcessEnv, ...args: string[]) => spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8' });
    const envHome = join(tmp, `env-home-${Math.random().toString(16).slice(2)}`);
    const xdg = join(tmp, `xdg-${Math.random().toString(16).slice(2)}`);
    expect(cli({ ...base, WASMBOX_HOME: envHome }, 'load', '-i', wasm).status).toBe(0);
    expect(existsSync(join(envHome, 'index.json'))).toBe(true);
    expect(cli({ ...base, XDG_DATA_HOME: xdg }, 'load', '-i', wasm).status).toBe(0);
    expect(existsSync(join(xdg, 'wasmbox', 'index.json'))).toBe(true);
    expect(cli(base, 'load', '-i', wasm).status).toBe(0);
    expect(existsSync(join(fakeHome, '.local/share/wasmbox/index.json'))).toBe(true);
    // --home wins over the environment
    const flagHome = join(tmp, `flag-home-${Math.random().toString(16).slice(2)}`);
    expect(cli({ ...base, WASMBOX_HOME: envHome }, '--home', flagHome, 'images', '-q').stdout).toBe('');
    expect(cli({ ...base, WASMBOX_HOME: envHome }, 'images', '-q').stdout.trim()).toMatch(/^[0-9a-f]{12}$/);
  });

  it('a command on a new store leaves it a whole layout, whether it succeeds or fails', () => {
    for (const args of [['images'], ['load', '-i', join(tmp, 'no-such-archive.tar')], ['rmi', 'nothing']]) {
      const fresh = join(tmp, `fresh-${Math.random().toString(16).slice(2)}`);
      const r = spawnSync(process.execPath, [bin, '--home', fresh, ...args], { encoding: 'utf8', cwd: tmp });
      expect(r.status, args.join(' ')).toBe(args[0] === 'images' ? 0 : 125);
      expect(readdirSync(fresh).sort(), args.join(' ')).toEqual(['.wasmbox', 'blobs', 'index.json', 'oci-layout']);
      expect(JSON.parse(readFileSync(join(fresh, 'index.json'), 'utf8')).manifests).toEqual([]);
    }
  });

  it('usage errors exit 125 like docker', () => {
    for (const args of [['--bogus'], ['load'], ['images', '--nope'], ['rmi'], ['save', 'x'], ['images', '--format', 'yaml']]) {
      const r = wasmbox(...args);
      expect(r.status, args.join(' ')).toBe(125);
      expect(r.stderr, args.join(' ')).toMatch(/^wasmbox: /m);
    }
    expect(wasmbox('--help').status).toBe(0);
    expect(wasmbox('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('unknown images are NOT_FOUND, status 125, with the name in the message', () => {
    for (const cmd of [['inspect', 'ghost'], ['rmi', 'ghost:1'], ['save', 'ghost', '-o', join(tmp, 'g.tar')], ['tag', 'ghost', 'x'], ['export', 'ghost', '-o', join(tmp, 'g2.tar')]]) {
      const r = wasmbox(...cmd);
      expect(r.status, cmd.join(' ')).toBe(125);
      expect(r.stderr, cmd.join(' ')).toMatch(/^wasmbox: No such image: ghost/m);
    }
    expect(existsSync(join(tmp, 'g.tar'))).toBe(false);
  });
});

describe('bad input: status 125, a clear message, nothing written to the store', () => {
  let before: string[];
  beforeEach(async () => {
    // A store that already holds an image, so "unchanged" is a real check.
    const { layout } = await appImage('present:1', 'x');
    const p = join(home, '..', `present-${Math.random().toString(16).slice(2)}.tar`);
    writeFileSync(p, await layout.toTar());
    ok('load', '-i', p);
    before = dirListing(home);
  });

  const expectRejected = (file: string, message: RegExp): void => {
    const r = wasmbox('load', '-i', file);
    expect(r.status, r.stderr).toBe(125);
    expect(r.stderr).toMatch(/^wasmbox: /);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toContain('Loaded image');
    expect(dirListing(home)).toEqual(before);
  };

  it('a truncated gzip archive on stdin', async () => {
    const { layout } = await appImage();
    const gz = gzipSync(await layout.toTar());
    const r = spawnSync(process.execPath, [cliBin, '--home', home, 'load'], { input: gz.subarray(0, gz.length >> 1), encoding: 'utf8' });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/^wasmbox: .*(unexpected end|truncat)/);
    expect(dirListing(home)).toEqual(before);
  });

  it('a truncated archive', async () => {
    const { layout } = await appImage();
    const bytes = await layout.toTar();
    const file = join(tmp, 'truncated.tar');
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.byteLength * 0.6)));
    expectRejected(file, /truncat|missing|not found|unexpected end|no such/i);
  });

  it('garbage JSON in index.json and in the manifest', async () => {
    const { layout } = await appImage();
    layout.files.set('index.json', enc('{"schemaVersion": 2, "manifests": [ this is not json'));
    const file = join(tmp, 'garbage.tar');
    writeFileSync(file, await layout.toTar());
    expectRejected(file, /json/i);

    const l2 = new Layout();
    const bad = l2.blob(OCI.manifest, enc('{{{{ definitely not a manifest'));
    l2.finish([tagged(bad, 'x')]);
    const file2 = join(tmp, 'garbage-manifest.tar');
    writeFileSync(file2, await l2.toTar());
    expectRejected(file2, /json/i);
  });

  it('a digest mismatch in the last layer', async () => {
    const { layout, img } = await appImage();
    const lastLayer: Desc = JSON.parse(Buffer.from(layout.files.get(`blobs/sha256/${hex(img.manifest.digest)}`)!).toString()).layers[1];
    const path = `blobs/sha256/${hex(lastLayer.digest)}`;
    const tampered = new Uint8Array(layout.files.get(path)!);
    tampered[2048] ^= 0xff; // the first byte of var/new's data in the uncompressed layer: same size, other digest
    layout.files.set(path, tampered);
    const file = join(tmp, 'mismatch.tar');
    writeFileSync(file, await layout.toTar());
    expectRejected(file, /digest/i);
  });

  it('a layer whose diff_id does not match its content', async () => {
    const { layout } = await appImage('d:1');
    const l2 = new Layout();
    const img = await l2.image({
      layers: [{ entries: [{ path: 'f', data: 'x' }], compression: 'gzip' }],
      configOverride: (c) => ({ ...c, rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } }),
    });
    l2.finish([tagged(img.manifest, 'd:1')]);
    void layout;
    const file = join(tmp, 'diffid.tar');
    writeFileSync(file, await l2.toTar());
    expectRejected(file, /diff_id|digest/i);
  });

  it('an unknown layer media type', async () => {
    const l = new Layout();
    const img = await l.image({ layers: [{ entries: [{ path: 'f', data: 'x' }], compression: 'none', mediaType: 'application/x-mystery' }] });
    l.finish([tagged(img.manifest, 'u:1')]);
    const file = join(tmp, 'mediatype.tar');
    writeFileSync(file, await l.toTar());
    expectRejected(file, /media type.*application\/x-mystery/i);
  });

  /** An OCI archive whose layers are the given tars (uncompressed unless gzip is asked for). */
  async function layersArchive(name: string, layers: Array<{ tar: Uint8Array; compression?: 'none' | 'gzip' }>): Promise<string> {
    const l = new Layout();
    const img = await l.image({ layers: layers.map((x) => ({ tar: x.tar, compression: x.compression ?? 'none' })) });
    l.finish([tagged(img.manifest, `${name}:1`)]);
    const file = join(tmp, `${name}.tar`);
    writeFileSync(file, await l.toTar());
    return file;
  }

  it('layer entries that escape: ../, absolute names, hard links outside, writes through a symlink', async () => {
    const { makeTar, rawTar, rawEntry } = await import('./helpers/tar-fixtures.ts');
    const dotdot = rawTar([rawEntry({ name: '../../etc/evil' }, 'evil')]);
    expectRejected(await layersArchive('dotdot', [{ tar: dotdot }]), /unsafe layer entry.*\.\./i);
    const absolute = rawTar([rawEntry({ name: '/etc/evil' }, 'evil')]);
    expectRejected(await layersArchive('absolute', [{ tar: absolute }]), /unsafe layer entry.*absolute/i);
    const hardlink = rawTar([rawEntry({ name: 'escape', typeflag: '1', linkname: '../../../etc/passwd' })]);
    expectRejected(await layersArchive('hardlink', [{ tar: hardlink }]), /unsafe layer entry/i);
    const symlinkLayer = await makeTar([{ path: 'etc', type: 'symlink', linkname: '/host-etc' }]);
    const through = await makeTar([{ path: 'etc/passwd', data: 'root::0:0::/:/bin/sh' }]);
    expectRejected(await layersArchive('through', [{ tar: symlinkLayer }, { tar: through }]), /unsafe layer entry.*symlink/i);
  });

  it('a truncated gzip layer (its digest matching the truncated bytes)', async () => {
    const { makeTar, gzip } = await import('./helpers/tar-fixtures.ts');
    const full = gzip(await makeTar([{ path: 'big', data: 'x'.repeat(100_000) }]));
    const l = new Layout();
    const img = await l.image({ layers: [{ tar: await makeTar([{ path: 'big', data: 'x'.repeat(100_000) }]), compression: 'gzip' }] });
    // Swap the layer blob for a truncated gzip stream, with a descriptor that matches those bytes.
    const manifestPath = `blobs/sha256/${hex(img.manifest.digest)}`;
    const manifest = JSON.parse(Buffer.from(l.files.get(manifestPath)!).toString());
    const cut = full.subarray(0, full.byteLength - 20);
    manifest.layers[0] = l.blob(OCI.tarGzip, cut);
    const m = l.json(OCI.manifest, manifest);
    l.finish([tagged(m, 'cut:1')]);
    const file = join(tmp, 'cutgzip.tar');
    writeFileSync(file, await l.toTar());
    expectRejected(file, /gzip|truncat|unexpected end/i);
  });

  it('a gzip bomb, bounded by --max-layer-size', async () => {
    const { makeTar } = await import('./helpers/tar-fixtures.ts');
    const file = await layersArchive('bomb', [{ tar: await makeTar([{ path: 'zeros', data: new Uint8Array(8 << 20) }]), compression: 'gzip' }]);
    expect(statSync(file).size).toBeLessThan(100_000);
    const r = wasmbox('load', '-i', file, '--max-layer-size', '1m');
    expect(r.status, r.stderr).toBe(125);
    expect(r.stderr).toMatch(/^wasmbox: .*limit/);
    expect(dirListing(home)).toEqual(before);
  });

  it('a missing file, and a file that is no image', () => {
    expectRejected(join(tmp, 'does-not-exist.tar'), /does-not-exist\.tar/);
    const junk = join(tmp, 'junk.tar');
    writeFileSync(junk, 'this is not a tar archive at all, just text'.repeat(20));
    expectRejected(junk, /junk\.tar/);
  });
});

describe('exit codes', () => {
  it('maps wasmbox errors and guest outcomes the way docker run does', async () => {
    const { exitCodeFor, exitCodeForStatus } = await import('../src/cli/exit-codes.ts');
    const { SandboxError } = await import('../src/errors.ts');
    expect(exitCodeFor(new SandboxError('MALFORMED', 'x'))).toBe(125);
    expect(exitCodeFor(new SandboxError('NOT_FOUND', 'No such image: x'))).toBe(125);
    expect(exitCodeFor(new SandboxError('NOT_FOUND', 'no /bin/app', { data: { entrypoint: '/bin/app' } }))).toBe(127);
    expect(exitCodeFor(new SandboxError('NOT_RUNNABLE', 'not a module'))).toBe(126);
    expect(exitCodeFor(new Error('plain'))).toBe(125);
    expect(exitCodeForStatus({ reason: 'exit', code: 3 })).toBe(3);
    expect(exitCodeForStatus({ reason: 'exit', code: 257 })).toBe(1);
    expect(exitCodeForStatus({ reason: 'timeout', code: 0 })).toBe(124);
    expect(exitCodeForStatus({ reason: 'killed', code: 0 })).toBe(137);
    expect(exitCodeForStatus({ reason: 'oom', code: 0 })).toBe(137);
    expect(exitCodeForStatus({ reason: 'signal', code: 0, signal: 'SIGTERM' })).toBe(143);
    expect(exitCodeForStatus({ reason: 'signal', code: 0, signal: 'INT' })).toBe(130);
    expect(exitCodeForStatus({ reason: 'trap', code: 0 })).toBe(134);
  });
});
