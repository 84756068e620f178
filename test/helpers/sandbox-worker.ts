import { build } from 'esbuild';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The sandbox worker bundle, built from the current sources into `dir` (so a test never runs a stale dist/). */
export async function buildWorker(dir: string): Promise<string> {
  const outfile = join(dir, 'sandbox-worker.js');
  await build({
    entryPoints: [join(root, 'src/sandbox/worker-entry.ts')], outfile, bundle: true, format: 'esm', platform: 'node',
    conditions: ['node'], logLevel: 'error', absWorkingDir: root,
    banner: { js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);" },
  });
  return outfile;
}
