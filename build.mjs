// Builds the CLI, the Node library and the browser bundle with esbuild.
// The browser build is also the check that core code (loader, fs, sandbox, runtime) imports no `node:` module.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { nodeBuiltins } from './build-builtins.mjs';

const nodeBanner = "import { createRequire as __wbCreateRequire } from 'node:module'; const require = __wbCreateRequire(import.meta.url);";

const common = { bundle: true, format: 'esm', sourcemap: 'linked', logLevel: 'warning', target: 'es2022' };

const nodeEntries = {
  index: 'src/index.ts',
  'sandbox-worker': 'src/sandbox/worker-entry.ts',
};
const browserEntries = {
  browser: 'src/index.browser.ts',
  'browser-worker': 'src/sandbox/worker-entry.ts',
};

const pick = (entries) => Object.fromEntries(Object.entries(entries).filter(([, f]) => existsSync(f)));

await Promise.all([
  build({
    ...common,
    entryPoints: pick(nodeEntries),
    outdir: 'dist',
    platform: 'node',
    conditions: ['node'],
    banner: { js: nodeBanner },
    plugins: [nodeBuiltins],
  }),
  // The CLI is CommonJS so that bin/wasmbox.cjs can compile it through vm.Script with V8's code cache;
  // minified, because reading and hashing its source is part of every start (the source map keeps names).
  build({
    ...common,
    format: 'cjs',
    minify: true,
    entryPoints: { cli: 'src/cli/main.ts' },
    outExtension: { '.js': '.cjs' },
    outdir: 'dist',
    platform: 'node',
    conditions: ['node'],
    define: { 'import.meta.url': '__wbModuleUrl' },
    banner: { js: "const __wbModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    plugins: [nodeBuiltins],
  }),
  build({
    ...common,
    entryPoints: pick(browserEntries),
    outdir: 'dist',
    platform: 'browser',
    define: { 'process.env.NODE_DEBUG': 'undefined' },
  }),
]);
