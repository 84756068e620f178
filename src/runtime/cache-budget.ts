/**
 * The memory a runtime keeps for images between containers (layer trees, packed trees, module bytes,
 * compiled modules), bounded in bytes: the least recently used entries go first. Dropping an entry only
 * makes its cache forget it: a container still running keeps what it holds, and the next container of
 * that image builds it again. One per runtime.
 */
export class CacheBudget {
  readonly limit: number;
  /** In order of use, least recent first (a Map keeps insertion order; a use re-inserts). */
  readonly #entries = new Map<string, { bytes: number; drop: () => void }>();
  #bytes = 0;

  constructor(limit: number) {
    if (!(limit >= 0)) throw new RangeError(`a cache limit is a number of bytes >= 0, not ${limit}`);
    this.limit = limit;
  }

  /** Records an entry (replacing one of the same key) as just used, then drops the oldest beyond the limit. */
  add(key: string, bytes: number, drop: () => void): void {
    this.forget(key);
    this.#entries.set(key, { bytes, drop });
    this.#bytes += bytes;
    this.#trim();
  }

  /** Marks an entry as just used; false when it is not (or no longer) cached. */
  touch(key: string): boolean {
    const entry = this.#entries.get(key);
    if (!entry) return false;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return true;
  }

  /** Removes an entry without dropping it (its cache already let it go). */
  forget(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }

  get usage(): { bytes: number; entries: number; limit: number } {
    return { bytes: this.#bytes, entries: this.#entries.size, limit: this.limit };
  }

  #trim(): void {
    for (const [key, entry] of this.#entries) {
      if (this.#bytes <= this.limit) return;
      this.#entries.delete(key);
      this.#bytes -= entry.bytes;
      entry.drop();
    }
  }
}

/** 256 MiB: a few dozen typical WASI images with their compiled modules. */
export const DEFAULT_CACHE_BYTES = 256 * 2 ** 20;
