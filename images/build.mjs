#!/usr/bin/env node
// Rebuilds wasmbox's sample images (images/NAME.tar, OCI archives) from images/src/*.c
// with Debian's clang-14 for wasm32-wasi. Deterministic: the same compiler and Node give
// the same bytes (fixed mtimes, sorted entries, gzip with a zero header mtime).
//
//   node images/build.mjs [--out DIR] [--only NAME[,NAME]] [--clang PATH]
//
// Self-contained on purpose (node:* and tar-stream only): it runs before anything is built.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, 'src');

/** Every timestamp in the archives (2026-01-01T00:00:00Z), like SOURCE_DATE_EPOCH. */
export const EPOCH_SECONDS = 1767225600;
const CREATED = new Date(EPOCH_SECONDS * 1000).toISOString().replace('.000Z', 'Z');

/** --stack-first: a stack overflow then runs below address 0 and traps instead of overwriting data. */
const CFLAGS = ['--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-Wall', '-Wl,--strip-all', '-Wl,--stack-first'];
/** The shell recurses (sh -c, $(...)); wasm has no stack guard, so give it room. */
const TOOLBOX_LDFLAGS = ['-Wl,-z,stack-size=1048576'];

/** Names linked to /bin/toolbox; `toolbox --list` prints the same set (checked by test/images.test.ts). */
export const TOOLBOX_APPLETS = [
  '[', 'basename', 'cat', 'cp', 'cut', 'date', 'dirname', 'echo', 'env', 'false', 'find', 'grep', 'head',
  'hostname', 'id', 'ln', 'ls', 'mkdir', 'mv', 'printf', 'pwd', 'rm', 'rmdir', 'sed', 'seq', 'sh', 'sleep', 'sort',
  'stat', 'tail', 'tee', 'test', 'touch', 'tr', 'true', 'uname', 'uniq', 'wc', 'which', 'whoami', 'xargs',
];

const TOOLBOX_SOURCES = ['toolbox/toolbox.c', 'toolbox/shell.c', 'toolbox/fs-tools.c', 'toolbox/text-tools.c', 'toolbox/misc-tools.c', 'toolbox/sed.c'];

const DIR = 0o755;
const EXEC = 0o755;
const FILE = 0o644;

/** @typedef {{ path: string, type: 'directory' } | { path: string, type: 'file', mode?: number, data: Buffer } | { path: string, type: 'symlink', target: string }} Entry */

/** The images: their programs, the other entries of their one layer, and their run config. */
export const IMAGES = [
  {
    name: 'hello',
    programs: [{ sources: ['hello.c'], path: 'hello.wasm' }],
    extra: [],
    config: { Env: ['PATH=/bin', 'GREETING=hello from wasmbox'], Entrypoint: ['/hello.wasm'], WorkingDir: '/' },
  },
  {
    name: 'toolbox',
    programs: [{ sources: TOOLBOX_SOURCES, path: 'bin/toolbox', ldflags: TOOLBOX_LDFLAGS }],
    extra: [
      { path: 'etc', type: 'directory' },
      { path: 'etc/hostname', type: 'file', data: Buffer.from('toolbox\n') },
      { path: 'etc/motd', type: 'file', data: Buffer.from('wasmbox toolbox: a shell and common tools in one WASI module\n') },
      { path: 'root', type: 'directory', mode: 0o700 },
      { path: 'tmp', type: 'directory', mode: 0o1777 },
      ...TOOLBOX_APPLETS.map((name) => ({ path: `bin/${name}`, type: 'symlink', target: 'toolbox' })),
    ],
    config: { Env: ['PATH=/bin', 'HOME=/root'], Cmd: ['/bin/sh'], WorkingDir: '/' },
  },
  {
    name: 'bench-cpu',
    programs: [{ sources: ['bench-cpu.c'], path: 'bench-cpu.wasm' }],
    extra: [],
    config: { Env: ['PATH=/bin'], Entrypoint: ['/bench-cpu.wasm'], WorkingDir: '/' },
  },
  {
    name: 'bench-fs',
    programs: [{ sources: ['bench-fs.c'], path: 'bench-fs.wasm' }],
    extra: [{ path: 'tmp', type: 'directory', mode: 0o1777 }],
    config: { Env: ['PATH=/bin'], Entrypoint: ['/bench-fs.wasm'], WorkingDir: '/' },
  },
];

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

const sha256 = (data) => 'sha256:' + createHash('sha256').update(data).digest('hex');

function compile(clang, program, workDir) {
  const out = join(workDir, program.path.replaceAll('/', '_'));
  const sources = program.sources.map((s) => join(srcDir, s));
  execFileSync(clang, [...CFLAGS, ...(program.ldflags ?? []), '-o', out, ...sources], { stdio: 'inherit' });
  return readFileSync(out);
}

/** Adds the parent directories every entry needs, then sorts by path (deterministic order). */
function completeTree(entries) {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { path: dir, type: 'directory' });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Writes entries as one tar (tar-stream, ustar/pax) with fixed owner and mtime. */
function packTar(entries) {
  return new Promise((resolvePromise, reject) => {
    const pack = tar.pack();
    const chunks = [];
    pack.on('data', (c) => chunks.push(c));
    pack.on('end', () => resolvePromise(Buffer.concat(chunks)));
    pack.on('error', reject);
    const base = { mtime: new Date(EPOCH_SECONDS * 1000), uid: 0, gid: 0, uname: 'root', gname: 'root' };
    const next = (i) => {
      if (i === entries.length) return pack.finalize();
      const e = entries[i];
      const done = (err) => (err ? reject(err) : next(i + 1));
      if (e.type === 'directory') {
        pack.entry({ ...base, name: e.path + '/', type: 'directory', mode: e.mode ?? DIR }, done);
      } else if (e.type === 'symlink') {
        pack.entry({ ...base, name: e.path, type: 'symlink', linkname: e.target, mode: 0o777 }, done);
      } else {
        pack.entry({ ...base, name: e.path, type: 'file', mode: e.mode ?? FILE, size: e.data.length }, e.data, done);
      }
    };
    next(0);
  });
}

const json = (value) => Buffer.from(JSON.stringify(value));

async function buildImage(image, clang, workDir) {
  const programs = image.programs.map((p) => ({ path: p.path, type: 'file', mode: EXEC, data: compile(clang, p, workDir) }));
  const layerTar = await packTar(completeTree([...programs, ...image.extra]));
  const layer = gzipSync(layerTar, { level: 9 });
  const cc = `${clang} ${CFLAGS.join(' ')}`;
  const config = json({
    created: CREATED,
    architecture: 'wasm',
    os: 'wasi',
    config: image.config,
    rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] },
    history: [{
      created: CREATED,
      created_by: `images/build.mjs: ${image.programs.map((p) => `${cc}${(p.ldflags ?? []).map((f) => ` ${f}`).join("")} -o /${p.path} ${p.sources.join(' ')}`).join('; ')}`,
    }],
  });
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: sha256(config), size: config.length },
    layers: [{ mediaType: MEDIA.layerGzip, digest: sha256(layer), size: layer.length }],
    annotations: { 'org.opencontainers.image.created': CREATED, 'org.opencontainers.image.title': image.name },
  });
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [{
      mediaType: MEDIA.manifest,
      digest: sha256(manifest),
      size: manifest.length,
      platform: { architecture: 'wasm', os: 'wasi' },
      annotations: { 'org.opencontainers.image.ref.name': `${image.name}:latest` },
    }],
  });
  const blob = (data) => ({ path: `blobs/sha256/${sha256(data).slice(7)}`, type: 'file', mode: FILE, data });
  const archive = await packTar(completeTree([
    { path: 'oci-layout', type: 'file', data: json({ imageLayoutVersion: '1.0.0' }) },
    { path: 'index.json', type: 'file', data: index },
    blob(manifest),
    blob(config),
    blob(layer),
  ]));
  return { archive, layerBytes: layer.length, layerTarBytes: layerTar.length };
}

async function main() {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: here },
      only: { type: 'string' },
      clang: { type: 'string', default: process.env.CLANG ?? 'clang-14' },
    },
  });
  const wanted = values.only ? new Set(values.only.split(',')) : undefined;
  const outDir = resolve(values.out);
  mkdirSync(outDir, { recursive: true });
  const workDir = mkdtempSync(join(tmpdir(), 'wasmbox-images-'));
  try {
    for (const image of IMAGES) {
      if (wanted && !wanted.has(image.name)) continue;
      const { archive, layerBytes } = await buildImage(image, values.clang, workDir);
      writeFileSync(join(outDir, `${image.name}.tar`), archive);
      console.log(`${image.name}.tar: ${archive.length} bytes (layer ${layerBytes} bytes gzipped)`);
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`images/build.mjs: ${err.message}`);
    process.exit(1);
  });
}
