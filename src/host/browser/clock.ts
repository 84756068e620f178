// The wall clock is the time origin plus the monotonic clock, so file times and preview1's realtime
// clock agree and never step backwards within a page or Worker.

/** Milliseconds (a double) as nanoseconds, without the precision a double loses at epoch scale. */
function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.floor((ms - whole) * 1e6));
}

export function monotonicNs(): bigint {
  return msToNs(performance.now());
}

export function wallClockNs(): bigint {
  return msToNs(performance.timeOrigin) + msToNs(performance.now());
}
