import { SandboxError } from '../errors.ts';
import type { Overlay, OverlayHandle } from './overlay.ts';
import { nodeEntry, writeTar, type TarEntry } from './tar-writer.ts';

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';

interface Record<H> {
  path: string;
  kind: 'node' | 'whiteout' | 'opaque';
  h?: H;
  /** Set for a node written as a hard link to this earlier (or unchanged lower) path. */
  linkTarget?: string;
}

interface LinkGroup {
  /** Indexes into the records of the paths this diff writes. */
  written: number[];
  /** A path where the lower already holds this very node, unchanged. */
  unchangedPath?: string;
}

/**
 * The overlay's upper as an OCI layer tar: every node that differs from the lower at its path
 * (new, copied up, moved), `.wh.NAME` for lower entries that are gone, and `.wh..wh..opq` in a
 * directory that replaced a lower directory. Hard links stay links: a node with several names is
 * written once and linked from its other names (or linked to a name where the lower already has it).
 * Deterministic: children in name order. The root directory's own metadata is not written. A name
 * starting with `.wh.` cannot be carried by a layer: the stream fails with INVALID_STATE.
 * Read the stream before changing the overlay again.
 */
export function overlayDiff<L>(overlay: Overlay<L>): ReadableStream<Uint8Array> {
  return writeTar(overlayDiffEntries(overlay));
}

export function* overlayDiffEntries<L>(overlay: Overlay<L>): Generator<TarEntry> {
  const records = collect(overlay);
  for (const r of records) {
    if (r.kind !== 'node') {
      yield { path: r.path, kind: 'file', mode: 0, uid: 0, gid: 0, mtimeNs: 0n, data: new Uint8Array(0) };
    } else if (r.linkTarget !== undefined) {
      const st = overlay.stat(r.h!);
      yield { path: r.path, kind: 'link', mode: st.mode, uid: st.uid, gid: st.gid, mtimeNs: st.mtimeNs, linkTarget: r.linkTarget };
    } else {
      yield nodeEntry(overlay, r.h!, r.path);
    }
  }
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function collect<L>(o: Overlay<L>): Record<OverlayHandle<L>>[] {
  const lower = o.lower;
  const records: Record<OverlayHandle<L>>[] = [];
  // Nothing copied up: the root is still the lower's, so nothing changed anywhere.
  if (lower !== undefined && o.copiedUp === 0) return records;
  const groups = new Map<number, LinkGroup>();
  const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

  /** `lp`: what the lower holds at `path` (undefined: nothing, or its parent differs). */
  const visit = (m: OverlayHandle<L>, lp: L | undefined, path: string, isRoot: boolean): void => {
    const st = o.stat(m);
    if (st.kind === 'socket') return;
    const upper = o.isUpper(m);
    const origin = upper ? m.origin : (m as L);
    const same = lp !== undefined && origin === lp;
    const changed = !same || upper;
    if (!isRoot) {
      if (st.kind !== 'dir' && st.nlink > 1) {
        let g = groups.get(st.ino);
        if (g === undefined) groups.set(st.ino, (g = { written: [] }));
        if (changed) g.written.push(records.length);
        else g.unchangedPath ??= path;
      }
      if (changed) records.push({ path, kind: 'node', h: m });
    }
    if (st.kind !== 'dir') return;

    let lowerDir: L | undefined;
    if (same) {
      lowerDir = lp;
    } else if (lp !== undefined && lower!.stat(lp).kind === 'dir' && !isRoot) {
      records.push({ path: join(path, OPAQUE), kind: 'opaque' });
    }
    const names = o.readdir(m).map((e) => e.name).sort(byName);
    if (same && upper) {
      const present = new Set(names);
      const gone = lower!.readdir(lp!).map((e) => e.name).filter((n) => !present.has(n)).sort(byName);
      for (const n of gone) records.push({ path: join(path, WHITEOUT + n), kind: 'whiteout' });
    }
    for (const name of names) {
      if (name.startsWith(WHITEOUT)) {
        throw new SandboxError('INVALID_STATE', `${join(path, name)}: a name starting with ${WHITEOUT} cannot be carried by an OCI layer (the prefix marks whiteouts)`, {
          data: { path: join(path, name) },
        });
      }
      const child = o.lookup(m, name);
      if (child === undefined) continue;
      const lowerChild = lowerDir !== undefined ? lower!.lookup(lowerDir, name) : undefined;
      visit(child, lowerChild, join(path, name), false);
    }
  };

  visit(o.root(), lower?.root(), '', true);

  for (const g of groups.values()) {
    if (g.written.length === 0) continue;
    const target = g.unchangedPath ?? records[g.written[0]!]!.path;
    for (const i of g.written) {
      const r = records[i]!;
      if (r.path !== target) r.linkTarget = target;
    }
  }
  return records;
}
