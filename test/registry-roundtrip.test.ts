import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayoutStore } from '../src/loader/store/layout-store.ts';
import { loadImage } from '../src/loader/store/load.ts';
import { pullImage } from '../src/loader/registry/pull.ts';
import { pushImage } from '../src/loader/registry/push.ts';
import { Layout, tagged, withPlatform, wasmBytes } from './helpers/image-fixtures.ts';
import { ensureBuilt, haveRegistry, haveSkopeo, removeRegistry, skopeo, startRegistry, wasmbox, type TestRegistry } from './helpers/registry.ts';

const images = join(import.meta.dirname, '..', 'images');

describe.skipIf(!haveRegistry || !haveSkopeo)('registry round trips (docker-registry, skopeo)', () => {
  let reg: TestRegistry;
  let dir: string;
  let store: LayoutStore;

  beforeAll(async () => {
    ensureBuilt();
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'wasmbox-reg-rt-'));
    store = await LayoutStore.open(join(dir, 'home'));
    await loadImage(store, join(images, 'hello.tar'), { names: ['hello:latest'] });
    await loadImage(store, join(images, 'toolbox.tar'), { names: ['toolbox:latest'] });
  }, 30_000);

  afterAll(async () => {
    await removeRegistry(reg);
    rmSync(dir, { recursive: true, force: true });
  });

  it('pushes a store image; skopeo reads it and copies it back byte for byte', async () => {
    const events: string[] = [];
    const r = await pushImage(store, 'hello:latest', `${reg.host}/demo/hello:1`, { onProgress: (e) => events.push(e.type) });
    const [local] = await store.get('hello:latest');
    expect(r.digest).toBe(local!.descriptor.digest);
    expect(events).toContain('done');
    const inspect = skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/demo/hello:1`]);
    expect(inspect.status, inspect.stderr).toBe(0);
    const info = JSON.parse(inspect.stdout) as { Digest: string; Os: string; Architecture: string; Layers: string[] };
    expect(info.Digest).toBe(local!.descriptor.digest);
    expect(info.Os).toBe('wasi');
    const out = join(dir, 'copied');
    const copy = skopeo(['copy', '--src-tls-verify=false', `docker://${reg.host}/demo/hello:1`, `oci:${out}:x`]);
    expect(copy.status, copy.stderr).toBe(0);
    // The manifest skopeo fetched is the one pushed (same digest), so every blob is as stored.
    const again = skopeo(['inspect', `oci:${out}:x`]);
    expect(JSON.parse(again.stdout).Digest).toBe(local!.descriptor.digest);
  });

  it('pushes again: every blob is found by HEAD and skipped', async () => {
    const events: Array<{ type: string; reason?: string }> = [];
    await pushImage(store, 'hello:latest', `${reg.host}/demo/hello:2`, { onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.type === 'start')).toEqual([]);
    expect(events.filter((e) => e.type === 'skip').every((e) => e.reason === 'exists')).toBe(true);
  });

  it('mounts blobs from another repository of the same registry', async () => {
    await store.tag('hello:latest', `${reg.host}/demo/hello:1`);
    const events: Array<{ type: string; reason?: string }> = [];
    await pushImage(store, `${reg.host}/demo/hello:1`, `${reg.host}/other/hello:1`, { onProgress: (e) => events.push(e) });
    expect(events.some((e) => e.type === 'skip' && e.reason === 'mounted')).toBe(true);
    expect(events.filter((e) => e.type === 'start')).toEqual([]);
  });

  it('pulls an image skopeo pushed into a fresh store, then runs nothing twice (blobs present are skipped)', async () => {
    const push = skopeo(['copy', '--dest-tls-verify=false', `oci-archive:${join(images, 'toolbox.tar')}`, `docker://${reg.host}/tools/toolbox:v1`]);
    expect(push.status, push.stderr).toBe(0);
    const fresh = await LayoutStore.open(join(dir, 'fresh'));
    const events: Array<{ type: string }> = [];
    const r = await pullImage(fresh, `${reg.host}/tools/toolbox:v1`, { onProgress: (e) => events.push(e) });
    expect(r.stored.map((s) => `${s.name!.repository}:${s.name!.tag}`)).toEqual([`${reg.host}/tools/toolbox:v1`]);
    const [ref] = await store.get('toolbox:latest');
    expect(r.image.digest).toBe(ref!.descriptor.digest);
    expect(r.image.kind).toBe('wasm-module');
    expect(events.some((e) => e.type === 'done')).toBe(true);
    const second: Array<{ type: string }> = [];
    await pullImage(fresh, `${reg.host}/tools/toolbox:v1`, { onProgress: (e) => second.push(e) });
    expect(second.map((e) => e.type)).toEqual(r.image.layers.map(() => 'skip'));
  });

  it('pulls by digest', async () => {
    const [local] = await store.get('hello:latest');
    const fresh = await LayoutStore.open(join(dir, 'by-digest'));
    const r = await pullImage(fresh, `${reg.host}/demo/hello@${local!.descriptor.digest}`);
    expect(r.image.digest).toBe(local!.descriptor.digest);
    // Stored as REPO@DIGEST: listed as `REPO <none>` (as docker does), found by REPO@DIGEST.
    expect(r.stored.map((i) => [i.repository, i.name])).toEqual([[`${reg.host}/demo/hello`, undefined]]);
    expect((await fresh.lookup(`${reg.host}/demo/hello@${local!.descriptor.digest}`)).length).toBe(1);
    expect((await fresh.lookup(`${reg.host}/demo/hello`)).length).toBe(0); // REPO means REPO:latest
  });

  it('CLI: pull REPO@DIGEST lists REPO <none>; run REPO@DIGEST runs it without pulling again; rmi REPO@DIGEST removes it', async () => {
    const [local] = await store.get('hello:latest');
    const home = join(dir, 'cli-by-digest');
    const ref = `${reg.host}/demo/hello@${local!.descriptor.digest}`;
    const pull = await wasmbox(home, ['pull', '-q', ref]);
    expect(pull.status, pull.stderr).toBe(0);
    const again = await wasmbox(home, ['pull', '-q', ref]);
    expect(again.status, again.stderr).toBe(0);
    const images = await wasmbox(home, ['images', '--format', 'json']);
    const rows = images.stdout.trim().split('\n').map((l) => JSON.parse(l) as { Repository: string; Tag: string; Digest: string });
    expect(rows.map((x) => [x.Repository, x.Tag, x.Digest])).toEqual([[`${reg.host}/demo/hello`, '<none>', local!.descriptor.digest]]);
    const table = await wasmbox(home, ['images']);
    expect(table.stdout).toMatch(new RegExp(`${reg.host.replace(/\./g, '\\.')}/demo/hello\\s+<none>\\s`));
    const inspect = await wasmbox(home, ['inspect', ref]);
    const [info] = JSON.parse(inspect.stdout) as Array<{ RepoTags: string[]; RepoDigests: string[] }>;
    expect([info!.RepoTags, info!.RepoDigests]).toEqual([[], [ref]]);
    const run = await wasmbox(home, ['run', ref]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/hello from wasmbox/);
    expect(run.stderr).not.toMatch(/Unable to find image/); // found in the store: no pull
    const rmi = await wasmbox(home, ['rmi', ref]);
    expect(rmi.status, rmi.stderr).toBe(0);
    expect((await wasmbox(home, ['images', '-q'])).stdout).toBe('');
  }, 60_000);

  it('CLI: pull says where it pulls from before any layer line, then one Pull complete per layer; pulled again, every layer already exists', async () => {
    const ref = `${reg.host}/demo/toolbox:1`;
    await pushImage(store, 'toolbox:latest', ref);
    const [local] = await store.get('toolbox:latest');
    const manifest = JSON.parse(new TextDecoder().decode(await store.readBytes(local!.descriptor))) as { layers: Array<{ digest: string }> };
    const ids = manifest.layers.map((l) => l.digest.slice(7, 19));
    const home = join(dir, 'cli-progress');
    const first = await wasmbox(home, ['pull', ref]);
    expect(first.status, first.stderr).toBe(0);
    const lines = first.stdout.trim().split('\n');
    expect(lines[0]).toBe('1: Pulling from demo/toolbox');
    for (const id of ids) expect(lines.filter((l) => l === `${id}: Pull complete`)).toHaveLength(1);
    expect(lines.slice(-3)).toEqual([`Digest: ${local!.descriptor.digest}`, `Status: Downloaded image for ${ref}`, ref]);
    const again = await wasmbox(home, ['pull', ref]);
    expect(again.status, again.stderr).toBe(0);
    for (const id of ids) expect(again.stdout).toContain(`${id}: Already exists`);
    expect(again.stdout).not.toMatch(/Pulling \(|Pull complete/);
  }, 60_000);

  it('pushes and pulls the CNCF wasm artifact form', async () => {
    await pushImage(store, 'hello:latest', `${reg.host}/demo/hello:artifact`, { format: 'wasm-artifact' });
    const raw = skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/demo/hello:artifact`]);
    expect(raw.status, raw.stderr).toBe(0);
    const manifest = JSON.parse(raw.stdout) as { config: { mediaType: string }; layers: Array<{ mediaType: string }> };
    expect(manifest.config.mediaType).toBe('application/vnd.wasm.config.v0+json');
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/wasm']);
    const fresh = await LayoutStore.open(join(dir, 'artifact'));
    const r = await pullImage(fresh, `${reg.host}/demo/hello:artifact`);
    expect(r.image.kind).toBe('wasm-module');
    expect(r.image.layers[0]!.kind).toBe('wasm');
    // The artifact's config names no command: the module (titled by its layer annotation) is the entrypoint.
    const run = await wasmbox(join(dir, 'artifact-run'), ['run', `${reg.host}/demo/hello:artifact`]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/argv\[0\]: \/hello.wasm/);
  });

  it('pushes in PATCH chunks when a blob is bigger than the chunk size', async () => {
    await pushImage(store, 'toolbox:latest', `${reg.host}/chunked/toolbox:1`, { chunkBytes: 4096 });
    const fresh = await LayoutStore.open(join(dir, 'chunked'));
    const r = await pullImage(fresh, `${reg.host}/chunked/toolbox:1`);
    const [local] = await store.get('toolbox:latest');
    expect(r.image.digest).toBe(local!.descriptor.digest);
  });

  it('wasmbox run REGISTRY/REPO pulls what is missing, then runs it', async () => {
    await pushImage(store, 'hello:latest', `${reg.host}/hello:latest`);
    const home = join(dir, 'run-home');
    const r = await wasmbox(home, ['run', `${reg.host}/hello`]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hello from wasmbox\n/); // the pull reports on stderr, as docker run does
    expect(r.stderr).toContain(`Unable to find image '${reg.host}/hello' locally`);
    expect(r.stderr).toMatch(/Pull complete/);
    expect(r.stderr).toContain(`Status: Downloaded newer image for ${reg.host}/hello`);
    const again = await wasmbox(home, ['run', `${reg.host}/hello`]);
    expect(again.stderr).toBe('');
    const images = await wasmbox(home, ['images']);
    expect(images.stdout).toContain(`${reg.host}/hello`);
    const missing = await wasmbox(home, ['run', `${reg.host}/nothing:here`]);
    expect(missing.status).toBe(125);
    expect(missing.stderr).toMatch(/MANIFEST_UNKNOWN|not found|unknown/i);
  }, 60_000);

  it('CLI pull of a multi-platform index picks --platform (pushed with skopeo copy --all)', async () => {
    const layout = new Layout();
    const wasi = await layout.image({ os: 'wasi', architecture: 'wasm', entrypoint: ['/app.wasm'], layers: [{ entries: [{ path: 'app.wasm', data: wasmBytes('module', 16) }] }] });
    const linux = await layout.image({ os: 'linux', architecture: 'amd64', layers: [{ entries: [{ path: 'etc/os', data: 'linux' }] }] });
    const index = layout.index([withPlatform(wasi.manifest, 'wasi', 'wasm'), withPlatform(linux.manifest, 'linux', 'amd64')]);
    layout.finish([tagged(index, 'multi')]);
    const ociDir = await layout.writeDir(join(dir, 'multi'));
    const copy = skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${ociDir}:multi`, `docker://${reg.host}/multi:1`]);
    expect(copy.status, copy.stderr).toBe(0);
    const home = join(dir, 'multi-home');
    const l = await wasmbox(home, ['pull', '--platform', 'linux/amd64', `${reg.host}/multi:1`]);
    expect(l.status, l.stderr).toBe(0);
    expect(l.stdout).toContain(`Digest: ${linux.manifest.digest}`);
    const w = await wasmbox(home, ['pull', `${reg.host}/multi:1`]);
    expect(w.status, w.stderr).toBe(0);
    expect(w.stdout).toContain(`Digest: ${wasi.manifest.digest}`);
    const none = await wasmbox(home, ['pull', '--platform', 'linux/s390x', `${reg.host}/multi:1`]);
    expect(none.status).toBe(125);
    expect(none.stderr).toMatch(/s390x/);
  }, 60_000);

  it('pushes a multi-platform index from the store (each manifest, then the index) and pulls either platform', async () => {
    const layout = new Layout();
    const wasi = await layout.image({ os: 'wasi', architecture: 'wasm', entrypoint: ['/app.wasm'], layers: [{ entries: [{ path: 'app.wasm', data: wasmBytes('module', 32) }] }] });
    const linux = await layout.image({ os: 'linux', architecture: 'arm64', layers: [{ entries: [{ path: 'etc/arch', data: 'arm64' }] }] });
    const index = layout.index([withPlatform(wasi.manifest, 'wasi', 'wasm'), withPlatform(linux.manifest, 'linux', 'arm64')]);
    layout.finish([tagged(index, 'both')]);
    const ociDir = await layout.writeDir(join(dir, 'index-src'));
    const home = join(dir, 'index-home');
    const into = skopeo(['copy', '--all', `oci:${ociDir}:both`, `oci:${home}:multi:1`]);
    expect(into.status, into.stderr).toBe(0);
    const indexStore = await LayoutStore.open(home);
    const r = await pushImage(indexStore, 'multi:1', `${reg.host}/indexed/multi:1`);
    expect(r.digest).toBe(index.digest);
    const raw = skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/indexed/multi:1`]);
    expect(JSON.parse(raw.stdout).manifests.length).toBe(2);
    const fresh = await LayoutStore.open(join(dir, 'index-pull'));
    expect((await pullImage(fresh, `${reg.host}/indexed/multi:1`, { platform: 'linux/arm64' })).image.digest).toBe(linux.manifest.digest);
    expect((await pullImage(fresh, `${reg.host}/indexed/multi:1`)).image.digest).toBe(wasi.manifest.digest);
  }, 60_000);
});
