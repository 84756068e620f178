// `npm run bench [-- --quick]`: every bench in turn (each prints its own table; see bench/README.md).
// Benches that need what the machine lacks (root, bwrap, docker-registry, skopeo) say so and skip.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const benches = ['run-runtime.mjs', 'fs-ops.mjs', 'fs-memory.mjs', 'load.mjs', 'linux-run.mjs', 'registry.mjs'];
let failed = 0;
for (const b of benches) {
  console.log(`\n== bench/${b}`);
  const r = spawnSync(process.execPath, [join(here, b), ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`bench/${b} exited with ${r.status ?? r.signal}`);
  }
}
process.exitCode = failed ? 1 : 0;
