#!/usr/bin/env node
'use strict';
// Starts the CLI bundle (dist/cli.cjs) through V8's code cache: compiling the bundle, and each function
// the first time it runs, is most of a CLI start's own cost. After a command's second run, the code V8
// compiled for it is saved (one cache per Node version, bundle and command) and later runs skip it.
// V8 checks each cache against the source and its own version and flags, and ignores one that does not
// match (the command then runs as without a cache, and the cache is written anew).
// WASMBOX_CODE_CACHE=0 turns this off; WASMBOX_CODE_CACHE=DIR puts the caches in DIR.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const bundle = path.join(__dirname, '..', 'dist', 'cli.cjs');
const argv = process.argv.slice(2);

function cacheDir() {
  const setting = process.env.WASMBOX_CODE_CACHE;
  if (setting === '0') return undefined;
  if (setting) return setting;
  const base = process.env.XDG_CACHE_HOME || (process.env.HOME && path.join(process.env.HOME, '.cache'));
  return base ? path.join(base, 'wasmbox', 'code-cache') : undefined;
}

/**
 * The command word: the first argument that is neither the global --home nor its value. Each command keeps
 * a code cache of its own path, and the CLI builds only that command.
 */
function commandWord() {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--home') i++;
    else if (a === '--') return undefined;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}
const command = commandWord();

let source;
try {
  source = fs.readFileSync(bundle, 'utf8');
} catch {
  process.stderr.write(`wasmbox: ${bundle} is missing: build it first (npm run build)\n`);
  process.exit(125);
}
const dir = cacheDir();
const stat = fs.statSync(bundle);
const prefix = `${process.version}-${process.arch}-`;
const cacheFile = dir && path.join(dir, `${prefix}${stat.size}-${Math.trunc(stat.mtimeMs)}-${command === undefined ? 'none' : /^[a-z]{1,16}$/.test(command) ? command : 'other'}.bin`);
let cachedData;
/** A cache file was there (used or not): a run then writes its own at once. */
let cacheFound = false;
if (cacheFile) cachedData = readOwnCache(cacheFile);

/**
 * The cache is compiled code: it is used only when this user owns it and no one else can write it (a cache
 * directory that others can write, through WASMBOX_CODE_CACHE, must not let them run code in wasmbox).
 */
function readOwnCache(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    cacheFound = true;
    const st = fs.fstatSync(fd);
    const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    if (!st.isFile() || st.uid !== uid || (st.mode & 0o022) !== 0) return undefined;
    return fs.readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// process.stdout and stderr are made on first use (a few milliseconds each): the ones the command made are
// noted, so that exitOnceFlushed flushes them without making the others.
const made = new Set();
const watched = new Set();
for (const name of ['stdout', 'stderr']) {
  const own = Object.getOwnPropertyDescriptor(process, name);
  if (!own || !own.get || !own.configurable) continue;
  watched.add(name);
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: own.enumerable,
    get() {
      const stream = own.get.call(process);
      made.add(stream);
      return stream;
    },
  });
}

const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
const script = new vm.Script(wrapper, { filename: bundle, ...(cachedData ? { cachedData } : {}) });
const cli = { exports: {} };
script.runInThisContext()(cli.exports, require('node:module').createRequire(bundle), cli, bundle, path.dirname(bundle));

/** What the command reports of itself: `codePath`, the way it went (`run:linux`, `run:wasi:inline`...). */
const report = {};
cli.exports.main(argv, command, report).then((code) => {
  process.exitCode = code;
  saveCacheOnSecondRun(report.codePath);
  exitOnceFlushed(code);
});

/**
 * The command is done: the process ends once stdout and stderr are flushed, without waiting for clean-up
 * that only frees what its exit frees anyway (a container root's unmount in the namespace helper, whose
 * mount namespace ends with it; directories are removed by 'exit' handlers).
 */
function exitOnceFlushed(code) {
  const streams = [...made, ...['stdout', 'stderr'].filter((n) => !watched.has(n)).map((n) => process[n])];
  let pending = streams.length + 1;
  const done = () => { if (--pending === 0) process.exit(code); };
  for (const stream of streams) {
    if (stream.writableLength === 0) done();
    else stream.write('', done);
  }
  done();
}

/** The code paths the cache was made from (a file next to it). */
function cachedPaths() {
  try {
    return fs.readFileSync(`${cacheFile}.paths`, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function saveCacheOnSecondRun(codePath) {
  if (!cacheFile) return;
  if (cachedData && !script.cachedDataRejected) {
    // The cache was used. A run down a way it was not made from (a Linux image's, after WASI ones')
    // compiled that way's functions just now: the cache is made again, holding both.
    const paths = cachedPaths();
    if (codePath && !paths.includes(codePath)) saveCache(script.createCachedData(), [...paths, codePath]);
    return;
  }
  // A command's first run often does one-time work (loading a sample image, packing a root filesystem):
  // the cache is taken from its second run, so it holds what later runs need and no more.
  const seen = `${cacheFile}.seen`;
  if (cacheFound || fs.existsSync(seen)) {
    saveCache(script.createCachedData(), codePath ? [codePath] : []);
    try { fs.rmSync(seen, { force: true }); } catch { /* gone */ }
  } else {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(seen, '', { mode: 0o600, flag: 'wx' });
    } catch { /* a cache that cannot be written is only slower */ }
  }
}

/**
 * Best effort: written whole then renamed into place, with the list of code paths it holds; older caches
 * (and markers) of this Node version for this command go.
 */
function saveCache(data, paths) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' }); // never through a link planted in a shared dir
    fs.renameSync(tmp, cacheFile);
    fs.writeFileSync(tmp, paths.join('\n'), { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, `${cacheFile}.paths`);
    const suffix = cacheFile.slice(cacheFile.lastIndexOf('-'));
    for (const f of fs.readdirSync(dir)) {
      const mine = f.endsWith(suffix) || f.endsWith(`${suffix}.seen`) || f.endsWith(`${suffix}.paths`);
      const current = path.join(dir, f) === cacheFile || path.join(dir, f) === `${cacheFile}.paths`;
      if (f.startsWith(prefix) && mine && !current) fs.rmSync(path.join(dir, f), { force: true });
    }
  } catch {
    try { fs.rmSync(tmp, { force: true }); } catch { /* never written */ }
  }
}
