// The public WASI preview1 conformance suite (see preview1-conformance.test.ts) once more, each test's
// fixture copied into an in-memory Overlay instead of a host directory: the path a container's guest
// takes (the overlay, PathCache's cached directory look-ups and their retirement on rename, rmdir and
// unlink). Runs when WASI_TESTSUITE_DIR points at a checkout of the suite's prod/testsuite-base branch.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { runSuiteCase, suiteCases } from './helpers/wasi-testsuite.ts';

const cases = suiteCases('preview1-overlay-conformance');

/** Copies a host directory tree into `dir` of the overlay (files, directories, symlinks). */
function copyIn(o: Overlay, dir: unknown, host: string): void {
  for (const name of readdirSync(host)) {
    const p = join(host, name);
    const st = lstatSync(p);
    if (st.isDirectory()) copyIn(o, o.mkdir(dir, name, st.mode & 0o7777), p);
    else if (st.isSymbolicLink()) o.symlink(dir, name, readlinkSync(p));
    else if (st.isFile()) {
      const h = o.createFile(dir, name, st.mode & 0o7777);
      const data = readFileSync(p);
      if (data.length > 0) o.write(h, data, 0);
    }
  }
}

describe.skipIf(cases.length === 0)('wasi-testsuite preview1 over an in-memory overlay', () => {
  for (const c of cases) {
    it(c.title, () => {
      const o = Overlay.prepare();
      if (c.spec.root) copyIn(o, o.root(), join(c.dir, c.spec.root));
      runSuiteCase(c, c.spec.root ? [{ guestPath: '/', vfs: o, readOnly: false }] : []);
    });
  }
});
