/**
 * Subordinate ids (/etc/subuid, /etc/subgid) for an unprivileged caller, as rootless podman uses them:
 * container id 0 is the caller's own id, ids 1..N are the caller's subordinate ranges in file order
 * (container id k -> start + k - 1 within the first range, and so on). newuidmap/newgidmap (setuid,
 * package `uidmap`) write that map for a process the caller started. Pure: the files' text and the
 * caller's identity arrive as arguments.
 */

/** One line of /etc/subuid or /etc/subgid: `owner:start:count` (owner a user name or a numeric uid). */
export interface SubIdEntry { owner: string; start: number; count: number }

/** One extent of a map: container ids [inside, inside + count) are host ids [outside, outside + count). */
export interface IdExtent { inside: number; outside: number; count: number }

/** The map of one kind (uids or gids): extent 0 maps 0 to the caller's id, the others the ranges. */
export interface IdMap {
  extents: IdExtent[];
  /** The highest container id mapped. */
  max: number;
}

export interface SubIdMapping { uid: IdMap; gid: IdMap }

/** (uid_t)-1 is never a valid id: a map may reach 4294967294 at most, inside and outside. */
const ID_LIMIT = 0xffffffff;
/** The kernel takes at most 340 extents in a uid_map (5 before Linux 4.15); one is the caller's own id. */
export const MAX_EXTENTS = 340;

/** The lines that parse; the rest (comments, blank lines, bad numbers, count 0, ranges past the id space) are skipped. */
export function parseSubIdFile(text: string): SubIdEntry[] {
  const out: SubIdEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length !== 3) continue;
    const [owner, start, count] = fields as [string, string, string];
    if (owner === '' || !/^\d{1,10}$/.test(start) || !/^\d{1,10}$/.test(count)) continue;
    const s = Number(start);
    const c = Number(count);
    if (c === 0 || s + c > ID_LIMIT) continue;
    out.push({ owner, start: s, count: c });
  }
  return out;
}

/** The caller's ranges, in file order: lines naming the user or its numeric uid. */
export function rangesFor(entries: SubIdEntry[], user: { name?: string; uid: number }): Array<{ start: number; count: number }> {
  const uid = String(user.uid);
  return entries.filter((e) => e.owner === uid || (user.name !== undefined && user.name !== '' && e.owner === user.name))
    .map(({ start, count }) => ({ start, count }));
}

/**
 * The map of one kind for a caller with host id `own` and these ranges; undefined when no usable range
 * remains. Ranges that overlap an earlier one or the caller's own id are dropped (the kernel refuses
 * overlapping extents), and the container ids stop below 4294967295.
 */
export function buildIdMap(own: number, ranges: Array<{ start: number; count: number }>): IdMap | undefined {
  const taken: Array<{ start: number; end: number }> = [{ start: own, end: own + 1 }];
  const extents: IdExtent[] = [{ inside: 0, outside: own, count: 1 }];
  let next = 1;
  for (const r of ranges) {
    if (extents.length >= MAX_EXTENTS || next >= ID_LIMIT) break;
    const end = r.start + r.count;
    if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.count) || r.count <= 0 || r.start < 0 || end > ID_LIMIT) continue;
    if (taken.some((t) => r.start < t.end && t.start < end)) continue;
    const count = Math.min(r.count, ID_LIMIT - next);
    taken.push({ start: r.start, end: r.start + count });
    extents.push({ inside: next, outside: r.start, count });
    next += count;
  }
  return extents.length > 1 ? { extents, max: next - 1 } : undefined;
}

/**
 * Both maps for a caller from the files' text; undefined when either file gives it no range
 * (then the backend keeps bwrap's single-uid map).
 */
export function subIdMapping(
  user: { name?: string; uid: number; gid: number },
  subuid: string,
  subgid: string,
): SubIdMapping | undefined {
  const uid = buildIdMap(user.uid, rangesFor(parseSubIdFile(subuid), user));
  // (/etc/subgid is keyed by the user's name or uid too, not by a group)
  const gid = buildIdMap(user.gid, rangesFor(parseSubIdFile(subgid), user));
  return uid && gid ? { uid, gid } : undefined;
}

/** newuidmap's / newgidmap's arguments after the program: `PID inside outside count …`. */
export function newIdMapArgs(pid: number, map: IdMap): string[] {
  return [String(pid), ...map.extents.flatMap((e) => [String(e.inside), String(e.outside), String(e.count)])];
}

/** The host id a container id lands on, undefined when the map does not cover it. */
export function hostIdOf(map: IdMap, id: number): number | undefined {
  for (const e of map.extents) if (id >= e.inside && id < e.inside + e.count) return e.outside + (id - e.inside);
  return undefined;
}

/** One line for people: which ids a container sees. */
export function describeMapping(m: SubIdMapping): string {
  const kind = (name: string, map: IdMap) =>
    `${name} 0 -> ${map.extents[0]!.outside}, 1..${map.max} -> ${map.extents.slice(1).map((e) => `${e.outside}..${e.outside + e.count - 1}`).join(', ')}`;
  return `${kind('uids', m.uid)}; ${kind('gids', m.gid)}`;
}
