import { WasiErrno, WasiError } from '../errno.ts';
import { Clockid } from './constants.ts';
import type { Context } from './context.ts';

/** Resolution reported for every clock (1 µs). */
const RESOLUTION_NS = 1000n;
const RANDOM_CHUNK = 65536;

export function clockRandomImports(ctx: Context) {
  const fill = ctx.opts.randomFill ?? ((b: Uint8Array) => crypto.getRandomValues(b));
  return {
    clock_res_get(id: number, resPtr: number): number {
      if (id >>> 0 > Clockid.THREAD_CPUTIME_ID) throw new WasiError(WasiErrno.INVAL);
      ctx.mem.setU64(resPtr, RESOLUTION_NS);
      return 0;
    },
    clock_time_get(id: number, _precision: bigint, timePtr: number): number {
      ctx.mem.setU64(timePtr, ctx.now(id >>> 0));
      return 0;
    },
    random_get(bufPtr: number, len: number): number {
      const n = len >>> 0;
      const start = ctx.mem.check(bufPtr, n);
      // A private buffer: getRandomValues refuses views of shared memory in browsers.
      const chunk = new Uint8Array(Math.min(n, RANDOM_CHUNK));
      for (let off = 0; off < n; off += RANDOM_CHUNK) {
        const part = Math.min(RANDOM_CHUNK, n - off);
        const view = part === chunk.length ? chunk : chunk.subarray(0, part);
        fill(view);
        ctx.mem.u8.set(view, start + off);
      }
      return 0;
    },
  };
}
