import { isDigest, type Digest } from '../digest.ts';
import { INDEX_TYPES, MANIFEST_TYPES } from '../media-types.ts';
import type { Descriptor } from '../types.ts';

/**
 * Every blob digest reachable from `roots`: indexes lead to manifests, manifests to their config and layers.
 * `readJson` returns undefined for a blob that is absent or not JSON; its children are then unknown, which is
 * safe for garbage collection (we only ever delete what is provably unreferenced by what we could read).
 */
export async function reachableBlobs(
  roots: Iterable<Descriptor>,
  readJson: (d: Descriptor) => Promise<unknown>,
): Promise<Set<Digest>> {
  const seen = new Set<Digest>();
  const queue: Descriptor[] = [...roots];
  while (queue.length > 0) {
    const d = queue.pop()!;
    if (!isDigest(d.digest) || seen.has(d.digest)) continue;
    seen.add(d.digest);
    if (!isJsonContainer(d.mediaType)) continue;
    const doc = (await readJson(d)) as Record<string, unknown> | undefined;
    if (!doc || typeof doc !== 'object') continue;
    for (const child of children(doc)) queue.push(child);
  }
  return seen;
}

function isJsonContainer(mediaType: string | undefined): boolean {
  return mediaType === undefined || INDEX_TYPES.includes(mediaType) || MANIFEST_TYPES.includes(mediaType);
}

function children(doc: Record<string, unknown>): Descriptor[] {
  const out: Descriptor[] = [];
  const add = (x: unknown): void => {
    if (x && typeof x === 'object' && isDigest((x as Descriptor).digest)) out.push(x as Descriptor);
  };
  if (Array.isArray(doc.manifests)) doc.manifests.forEach(add);
  add(doc.config);
  if (Array.isArray(doc.layers)) doc.layers.forEach(add);
  return out;
}
