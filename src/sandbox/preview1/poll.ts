import { WasiErrno, WasiError } from '../errno.ts';
import { Eventtype, Limits, SUBCLOCK_ABSTIME, Clockid } from './constants.ts';
import type { Context } from './context.ts';

const SUBSCRIPTION_BYTES = 48;
const EVENT_BYTES = 32;
/** While waiting on stdin readiness, check it this often. */
const STDIN_POLL_NS = 5_000_000n;

interface ClockSub { userdata: bigint; clockId: number; deadline: bigint; error: number }
interface FdSub { userdata: bigint; type: number; fd: number }
interface Event { userdata: bigint; error: number; type: number; nbytes: bigint }

export function pollImports(ctx: Context) {
  const mem = ctx.mem;

  /** Readiness of one fd subscription: an event when ready (or failed), undefined when it would block. */
  function fdEvent(s: FdSub): Event | undefined {
    if (!ctx.fds.has(s.fd)) return { userdata: s.userdata, error: WasiErrno.BADF, type: s.type, nbytes: 0n };
    const e = ctx.fd(s.fd);
    if (e.stdio !== undefined) {
      if (s.type === Eventtype.FD_READ) {
        if (e.stdio !== 0) return { userdata: s.userdata, error: WasiErrno.BADF, type: s.type, nbytes: 0n };
        const ready = ctx.opts.stdin.ready?.() ?? true;
        return ready ? { userdata: s.userdata, error: 0, type: s.type, nbytes: 1n } : undefined;
      }
      if (e.stdio === 0) return { userdata: s.userdata, error: WasiErrno.BADF, type: s.type, nbytes: 0n };
      return { userdata: s.userdata, error: 0, type: s.type, nbytes: 0n };
    }
    // Regular files and directories are always ready.
    let nbytes = 0n;
    if (s.type === Eventtype.FD_READ && e.vfs !== undefined && e.filetype !== 3) {
      const size = e.vfs.stat(e.handle).size;
      nbytes = BigInt(Math.max(0, size - e.position));
    }
    return { userdata: s.userdata, error: 0, type: s.type, nbytes };
  }

  return {
    poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
      const n = nsubs >>> 0;
      if (n === 0) throw new WasiError(WasiErrno.INVAL, 'no subscriptions');
      if (n > Limits.maxSubscriptions) throw new WasiError(WasiErrno.INVAL, `${n} subscriptions`);
      const inBase = mem.check(inPtr, n * SUBSCRIPTION_BYTES);
      const outBase = mem.check(outPtr, n * EVENT_BYTES);
      mem.check(neventsPtr, 4);
      const clocks: ClockSub[] = [];
      const fds: FdSub[] = [];
      const events: Event[] = [];
      const v = mem.view;
      for (let i = 0; i < n; i++) {
        const p = inBase + i * SUBSCRIPTION_BYTES;
        const userdata = v.getBigUint64(p, true);
        const tag = v.getUint8(p + 8);
        if (tag === Eventtype.CLOCK) {
          const clockId = v.getUint32(p + 16, true);
          const timeout = v.getBigUint64(p + 24, true);
          const flags = v.getUint16(p + 40, true);
          if (clockId > Clockid.THREAD_CPUTIME_ID) {
            events.push({ userdata, error: WasiErrno.INVAL, type: tag, nbytes: 0n });
            continue;
          }
          const deadline = flags & SUBCLOCK_ABSTIME ? timeout : ctx.now(clockId) + timeout;
          clocks.push({ userdata, clockId, deadline, error: 0 });
        } else if (tag === Eventtype.FD_READ || tag === Eventtype.FD_WRITE) {
          fds.push({ userdata, type: tag, fd: v.getUint32(p + 16, true) });
        } else {
          events.push({ userdata, error: WasiErrno.INVAL, type: tag, nbytes: 0n });
        }
      }

      const pending: FdSub[] = [];
      for (const s of fds) {
        const ev = fdEvent(s);
        if (ev) events.push(ev);
        else pending.push(s);
      }
      const expired = () => clocks.filter((c) => ctx.now(c.clockId) >= c.deadline);
      if (events.length === 0) {
        // Nothing ready yet: wait for the earliest clock, checking pending stdin meanwhile.
        for (;;) {
          const due = expired();
          if (due.length > 0) {
            for (const c of due) events.push({ userdata: c.userdata, error: 0, type: Eventtype.CLOCK, nbytes: 0n });
            break;
          }
          let wait = clocks.length > 0
            ? clocks.reduce((m, c) => {
              const left = c.deadline - ctx.now(c.clockId);
              return left < m ? left : m;
            }, 2n ** 62n)
            : 2n ** 62n;
          if (pending.length > 0 && wait > STDIN_POLL_NS) wait = STDIN_POLL_NS;
          if (pending.length === 0 && clocks.length === 0) break;
          ctx.sleep(wait);
          for (const s of pending.splice(0)) {
            const ev = fdEvent(s);
            if (ev) events.push(ev);
            else pending.push(s);
          }
          if (events.length > 0) break;
        }
      } else {
        for (const c of expired()) events.push({ userdata: c.userdata, error: 0, type: Eventtype.CLOCK, nbytes: 0n });
      }

      const out = mem.view;
      events.forEach((ev, i) => {
        const p = outBase + i * EVENT_BYTES;
        out.setBigUint64(p, ev.userdata, true);
        out.setUint16(p + 8, ev.error, true);
        out.setUint8(p + 10, ev.type);
        out.setUint8(p + 11, 0);
        out.setUint32(p + 12, 0, true);
        out.setBigUint64(p + 16, ev.nbytes, true);
        out.setBigUint64(p + 24, 0n, true);
      });
      mem.setU32(neventsPtr, events.length);
      return 0;
    },
  };
}
