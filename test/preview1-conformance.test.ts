// Runs the public WASI preview1 conformance suite against Preview1 when WASI_TESTSUITE_DIR points at a
// checkout of it (see helpers/wasi-testsuite.ts). Each test's "root" fixture directory (a fresh copy) is
// preopened as "/" through the host-directory Vfs, as wasmtime's adapter runs it.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import type { Vfs } from '../src/fs/vfs.ts';
import { hostDirVfs } from '../src/host/node/host-vfs.ts';
import type { Preopen } from '../src/sandbox/preview1/preview1.ts';
import { runSuiteCase, suiteCases } from './helpers/wasi-testsuite.ts';

const cases = suiteCases('preview1-conformance');

describe.skipIf(cases.length === 0)('wasi-testsuite preview1', () => {
  for (const c of cases) {
    it(c.title, () => {
      const preopens: Preopen[] = [];
      let scratch: string | undefined;
      if (c.spec.root) {
        scratch = mkdtempSync(join(tmpdir(), 'wasmbox-wts-'));
        cpSync(join(c.dir, c.spec.root), scratch, { recursive: true, verbatimSymlinks: true });
        preopens.push({ guestPath: '/', vfs: hostDirVfs(scratch, { readOnly: false }) as Vfs, readOnly: false });
      }
      try {
        runSuiteCase(c, preopens);
      } finally {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
      }
    });
  }
});
