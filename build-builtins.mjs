// An esbuild plugin for the Node bundles: every Node built-in is taken with `require` (the bundle's banner
// defines one) instead of an `import` statement, and the heavy ones are loaded on first use.
//
// Why: a bundle hoists each `import ... from 'node:x'` to its top, so every CLI start would load every
// built-in any command needs; child_process, crypto, zlib, stream, worker_threads... cost 3-10 ms each
// here. And importing `node:fs` as an ES module reads all its exports, which loads the streams too.
import { builtinModules, createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Loaded on first property access. */
const LAZY = new Set([
  'child_process', 'crypto', 'zlib', 'stream', 'stream/web', 'stream/promises', 'worker_threads', 'fs/promises',
  'http', 'https', 'http2', 'net', 'tls', 'dgram', 'dns', 'readline', 'v8', 'vm', 'perf_hooks', 'tty',
]);

const builtins = new Set(builtinModules);

export const nodeBuiltins = {
  name: 'node-builtins',
  setup(build) {
    build.onResolve({ filter: /^[a-z_/:0-9]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (!builtins.has(name)) return undefined;
      if (args.namespace === 'node-builtin') return { path: `node:${name}`, external: true };
      return { path: name, namespace: 'node-builtin' };
    });
    // The module object is only the prototype of what the bundle gets: esbuild's ES-module interop then
    // finds no own properties to copy (it would define a getter per export on every import), and reads
    // go through to the real module. A lazy built-in's prototype is a proxy that loads it on first read.
    build.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => {
      const spec = JSON.stringify(`node:${args.path}`);
      // A module that is a function (events, stream, assert) must stay itself: it is called or extended.
      if (typeof require(`node:${args.path}`) === 'function') return { contents: `module.exports = require(${spec});`, loader: 'js' };
      if (!LAZY.has(args.path)) return { contents: `module.exports = Object.create(require(${spec}));`, loader: 'js' };
      return {
        contents: `let m;
module.exports = Object.create(new Proxy(Object.create(null), {
  get: (_, k) => (k === '__esModule' ? undefined : (m ??= require(${spec}))[k]),
}));`,
        loader: 'js',
      };
    });
  },
};
