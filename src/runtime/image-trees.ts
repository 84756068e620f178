import type { DiskCache } from '#host/disk-cache';
import { SHARE_PACKED_TREES } from '#host/worker';
import { LayerCache } from '../fs/layer-cache.ts';
import { Overlay } from '../fs/overlay.ts';
import { decodePackedTree, encodePackedTree } from '../fs/packed-file.ts';
import { packTree, type PackedTree } from '../fs/packed-tree.ts';
import { packedVfs } from '../fs/packed-vfs.ts';
import { treeVfs } from '../fs/tree-vfs.ts';
import type { Vfs } from '../fs/vfs.ts';
import type { Image } from '../loader/source.ts';
import type { RootfsProvider, WasiBackendOptions } from '../sandbox/backend.ts';

/**
 * A runtime's image trees: one LayerCache (layer trees by chainID) and one cache of packed trees
 * (by image digest) that Workers share without copying. Owned by one runtime instance.
 */
export interface ImageTrees extends RootfsProvider {
  readonly layerCache: LayerCache;
}

/** What the host's default backends are built from (`#host/backends`). */
export interface HostBackendContext extends WasiBackendOptions {
  provider: ImageTrees;
  /** The runtime's home directory (Linux backend state), when it has one. */
  home?: string;
}

/**
 * `diskCache`: where packed root filesystems are kept between processes (Node), asked for when an image's
 * rootfs is first needed; undefined keeps them in memory only.
 */
export function createImageTrees(diskCache: () => DiskCache | undefined = () => undefined): ImageTrees {
  const layerCache = new LayerCache();
  const packed = new Map<string, Promise<{ vfs: Vfs; packed(): unknown }>>();
  const wasmLayers = new Map<string, Promise<Uint8Array | undefined>>();
  return {
    layerCache,
    volumes: new Map(),
    rootfs(image: Image) {
      let p = packed.get(image.digest);
      if (!p) {
        p = (async () => {
          const key = topTarChainId(image);
          const cache = key === undefined ? undefined : diskCache();
          const cached = cache && openCached(cache.get('rootfs', key!));
          if (cached) return { vfs: cached.vfs, packed: () => cached.tree };
          // Untarring (tar-stream, decompressors) is loaded only when no packed tree is cached.
          const { buildRootfs } = await import('../fs/rootfs.ts');
          const tree = await buildRootfs(image, layerCache);
          // An image without tar layers (a raw wasm layer) gets an empty root directory.
          const vfs = (tree ? treeVfs(tree) : Overlay.view(Overlay.prepare())) as Vfs;
          let packedTree: PackedTree | undefined;
          if (cache && tree) {
            packedTree = packTree(vfs, { shared: SHARE_PACKED_TREES });
            cache.put('rootfs', key!, encodePackedTree(packedTree));
          }
          return { vfs, packed: () => (packedTree ??= packTree(vfs, { shared: SHARE_PACKED_TREES })) };
        })();
        packed.set(image.digest, p);
        p.catch(() => packed.delete(image.digest));
      }
      return p;
    },
    wasmLayer(image: Image) {
      let p = wasmLayers.get(image.digest);
      if (!p) {
        p = (async () => {
          const layer = image.layers.find((l) => l.kind === 'wasm');
          if (!layer) return undefined;
          return new Uint8Array(await new Response(await layer.open()).arrayBuffer());
        })();
        wasmLayers.set(image.digest, p);
        p.catch(() => wasmLayers.delete(image.digest));
      }
      return p;
    },
    openPacked(p: unknown): Vfs {
      return packedVfs(p as never) as Vfs;
    },
  };
}

/** The rootfs is a function of the tar layers' content: the chainID of the top one names it. */
function topTarChainId(image: Image): string | undefined {
  for (let i = image.layers.length - 1; i >= 0; i--) if (image.layers[i]!.kind === 'tar') return image.layers[i]!.chainId;
  return undefined;
}

/** A cached packed tree, or undefined when there is none or it is damaged (then it is rebuilt and rewritten). */
function openCached(bytes: Uint8Array | undefined): { tree: PackedTree; vfs: Vfs } | undefined {
  if (!bytes) return undefined;
  try {
    const tree = decodePackedTree(bytes, { shared: SHARE_PACKED_TREES });
    return { tree, vfs: packedVfs(tree) as Vfs };
  } catch {
    return undefined;
  }
}
