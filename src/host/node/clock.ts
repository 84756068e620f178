import process from 'node:process';

// The wall clock is the monotonic clock plus the epoch time read once: file times and preview1's realtime
// clock then agree and never step backwards within a process. process.hrtime needs no module; touching
// `performance` loads Node's perf_hooks (~3 ms of a CLI start).
const monotonicStart = process.hrtime.bigint();
const wallStart = BigInt(Date.now()) * 1_000_000n;

/** Nanoseconds from an arbitrary origin, never decreasing. */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

/** Nanoseconds since the epoch. */
export function wallClockNs(): bigint {
  return wallStart + (process.hrtime.bigint() - monotonicStart);
}
