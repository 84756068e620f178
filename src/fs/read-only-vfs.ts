import { FsError, type DirEntry, type NodeKind, type Stat, type Vfs } from './vfs.ts';

/** The mutating half of a Vfs for trees that never change: every call fails with EROFS. */
export abstract class ReadOnlyVfs<H> implements Vfs<H> {
  readonly readOnly = true;

  constructor(private readonly what: string) {}

  abstract root(): H;
  abstract lookup(dir: H, name: string): H | undefined;
  abstract stat(h: H): Stat;
  abstract kind(h: H): NodeKind;
  abstract readdir(dir: H): DirEntry[];
  abstract readlink(h: H): string;
  abstract read(h: H, into: Uint8Array, position: number): number;

  /** The tree never changes, so neither does any path in it. */
  layoutVersion(): number {
    return 0;
  }

  write(): number {
    throw this.#erofs();
  }
  setSize(): void {
    throw this.#erofs();
  }
  setTimes(): void {
    throw this.#erofs();
  }
  mkdir(): H {
    throw this.#erofs();
  }
  createFile(): H {
    throw this.#erofs();
  }
  symlink(): H {
    throw this.#erofs();
  }
  link(): void {
    throw this.#erofs();
  }
  unlink(): void {
    throw this.#erofs();
  }
  rmdir(): void {
    throw this.#erofs();
  }
  rename(): void {
    throw this.#erofs();
  }

  #erofs(): FsError {
    return new FsError('EROFS', `${this.what} are read-only`);
  }
}
