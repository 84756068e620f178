/**
 * Removing materialised root filesystems that no stored image names any more (after `rmi`), unless a
 * container still uses one. A container's use shows in a mount table: its read-only root is a bind of
 * the directory, a writable root an overlay whose lowerdir names it; both are read from the mount
 * namespaces of this user's processes (/proc/PID/mountinfo, each namespace once).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** The mount tables of every mount namespace of a process this user can read, as one text. */
export function mountTables(): string {
  const seen = new Set<string>();
  const tables: string[] = [];
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return '';
  }
  for (const pid of pids) {
    try {
      const ns = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
      if (seen.has(ns)) continue;
      seen.add(ns);
      tables.push(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
    } catch { /* gone, or not ours to read */ }
  }
  return tables.join('\n');
}

/**
 * Removes the directories under `<home>/linux/layers*` whose chainID is not in `live` and that no mount
 * uses. Each is renamed aside first: a run that looks for it then materialises it again, and a container
 * that mounted it just before stays whole (the mount tables are read after the renames, and what they
 * name is put back). `remove` deletes a tree (files of mapped ids need the namespace helper's user
 * namespace). Returns the chainIDs removed.
 */
export function pruneMaterialised(home: string, live: Set<string>, remove: (dir: string) => void): string[] {
  const linuxDir = path.join(home, 'linux');
  let folders: string[];
  try {
    folders = fs.readdirSync(linuxDir).filter((f) => f === 'layers' || f.startsWith('layers-'));
  } catch {
    return [];
  }
  const aside: Array<{ dir: string; moved: string; hex: string }> = [];
  for (const folder of folders) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(linuxDir, folder));
    } catch {
      continue;
    }
    for (const hex of names) {
      if (!/^[0-9a-f]{64}$/.test(hex) || live.has(`sha256:${hex}`)) continue;
      const dir = path.join(linuxDir, folder, hex);
      const moved = path.join(linuxDir, folder, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        fs.renameSync(dir, moved);
        aside.push({ dir, moved, hex });
      } catch { /* another process took it meanwhile */ }
    }
  }
  if (aside.length === 0) return [];
  // (a bind mount shows the directory's path now, an overlay the lowerdir it was given)
  const tables = mountTables();
  const removed: string[] = [];
  for (const { dir, moved, hex } of aside) {
    if (tables.includes(hex) || tables.includes(path.basename(moved))) {
      try { fs.renameSync(moved, dir); } catch { /* materialised again meanwhile: left aside, in use */ }
      continue;
    }
    remove(moved);
    removed.push(`sha256:${hex}`);
  }
  return removed;
}
