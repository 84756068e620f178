import type { Digest } from '../loader/digest.ts';
import type { LayerTree } from './layer-tree.ts';

/**
 * Layer trees by chainID, one cache per runtime: every container of an image shares them.
 * Concurrent builds of the same chainID run once; a failed build is not remembered.
 */
export class LayerCache {
  readonly #trees = new Map<Digest, LayerTree>();
  readonly #building = new Map<Digest, Promise<LayerTree>>();

  get(chainId: Digest): LayerTree | undefined {
    return this.#trees.get(chainId);
  }

  has(chainId: Digest): boolean {
    return this.#trees.has(chainId);
  }

  get size(): number {
    return this.#trees.size;
  }

  getOrBuild(chainId: Digest, build: () => Promise<LayerTree>): Promise<LayerTree> {
    const done = this.#trees.get(chainId);
    if (done) return Promise.resolve(done);
    const running = this.#building.get(chainId);
    if (running) return running;
    const p = (async () => {
      try {
        const tree = await build();
        this.#trees.set(chainId, tree);
        return tree;
      } finally {
        this.#building.delete(chainId);
      }
    })();
    this.#building.set(chainId, p);
    return p;
  }

  /** Forgets a tree (and, since children point at their parents, keeps nothing else alive by itself). */
  delete(chainId: Digest): boolean {
    return this.#trees.delete(chainId);
  }

  clear(): void {
    this.#trees.clear();
  }
}
