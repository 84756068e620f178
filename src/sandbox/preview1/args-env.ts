import type { Context } from './context.ts';

const encoder = new TextEncoder();

/** Strings encoded once as NUL-terminated UTF-8: sizes are byte counts (not UTF-16 units). */
export class StringList {
  readonly items: Uint8Array[];
  readonly bytes: number;
  constructor(strings: readonly string[]) {
    this.items = strings.map((s) => encoder.encode(s + '\0'));
    this.bytes = this.items.reduce((n, b) => n + b.length, 0);
  }

  sizesGet(ctx: Context, countPtr: number, bufSizePtr: number): number {
    ctx.mem.setU32(countPtr, this.items.length);
    ctx.mem.setU32(bufSizePtr, this.bytes);
    return 0;
  }

  get(ctx: Context, ptrsPtr: number, bufPtr: number): number {
    const mem = ctx.mem;
    mem.check(ptrsPtr, this.items.length * 4);
    let at = mem.check(bufPtr, this.bytes);
    const view = mem.view;
    const u8 = mem.u8;
    const ptrs = ptrsPtr >>> 0;
    this.items.forEach((item, i) => {
      view.setUint32(ptrs + i * 4, at, true);
      u8.set(item, at);
      at += item.length;
    });
    return 0;
  }
}

export function argsEnvImports(ctx: Context) {
  const args = new StringList(ctx.opts.args);
  const env = new StringList(ctx.opts.env);
  return {
    args_sizes_get: (countPtr: number, sizePtr: number) => args.sizesGet(ctx, countPtr, sizePtr),
    args_get: (argvPtr: number, bufPtr: number) => args.get(ctx, argvPtr, bufPtr),
    environ_sizes_get: (countPtr: number, sizePtr: number) => env.sizesGet(ctx, countPtr, sizePtr),
    environ_get: (envPtr: number, bufPtr: number) => env.get(ctx, envPtr, bufPtr),
  };
}
