import { isDigest, type Digest } from '../digest.ts';
import { INDEX_TYPES } from '../media-types.ts';
import { chainIds } from '../open-image.ts';
import type { Descriptor } from '../types.ts';

/** The chainID of a root filesystem without layers (what an image with none is materialised as). */
export const EMPTY_ROOTFS_CHAIN_ID = `sha256:${'0'.repeat(64)}` as Digest;

/**
 * The top chainID (its last layer's) of every image reachable from `roots`, indexes expanded: the names
 * root filesystems materialised from these images go by. A blob the store does not have (an index's
 * other platforms) names nothing; one it has that cannot be read as a manifest or config makes the
 * result undefined (what it holds is unknown: nothing may be taken as unused).
 */
export async function rootfsChainIds(
  roots: Iterable<Descriptor>,
  blobs: { has(d: Digest): Promise<boolean>; readJson(d: Descriptor): Promise<unknown> },
): Promise<Set<Digest> | undefined> {
  const out = new Set<Digest>();
  const seen = new Set<string>();
  const queue: Descriptor[] = [...roots];
  while (queue.length > 0) {
    const d = queue.pop()!;
    if (!isDigest(d.digest) || seen.has(d.digest)) continue;
    seen.add(d.digest);
    if (!(await blobs.has(d.digest))) continue;
    const doc = (await blobs.readJson(d)) as { manifests?: unknown; config?: Descriptor } | undefined;
    if (!doc || typeof doc !== 'object') return undefined;
    if (INDEX_TYPES.includes(d.mediaType) || Array.isArray(doc.manifests)) {
      for (const m of (doc.manifests as Descriptor[] | undefined) ?? []) queue.push(m);
      continue;
    }
    if (!doc.config || !isDigest(doc.config.digest) || !(await blobs.has(doc.config.digest))) return undefined;
    const config = (await blobs.readJson(doc.config)) as { rootfs?: { diff_ids?: unknown } } | undefined;
    if (!config || typeof config !== 'object') return undefined;
    const diffIds = config.rootfs?.diff_ids;
    // (a wasm artifact's config has no rootfs: nothing of it is ever materialised)
    if (diffIds === undefined) continue;
    if (!Array.isArray(diffIds) || !diffIds.every((x) => typeof x === 'string' && isDigest(x))) return undefined;
    out.add(diffIds.length > 0 ? chainIds(diffIds as Digest[]).at(-1)! : EMPTY_ROOTFS_CHAIN_ID);
  }
  return out;
}
