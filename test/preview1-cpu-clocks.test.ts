// The process and thread CPU-time clocks: real CPU time where the host has it (Node's
// process.cpuUsage, and threadCpuUsage where Node has it), wall time since the start where it has not.
import { describe, expect, it } from 'vitest';
import { E, Harness } from './helpers/preview1-harness.ts';

const PROCESS = 2;
const THREAD = 3;
const MONOTONIC = 1;

function read(h: Harness, id: number): bigint {
  const t = h.alloc(8);
  expect(h.call('clock_time_get', id, 1n, t)).toBe(E.SUCCESS);
  return h.u64(t);
}

describe('CPU-time clocks', () => {
  it('count the clock’s CPU time from the instance start', () => {
    let wall = 1_000n;
    let proc = 50_000n;
    let thread = 7_000n;
    const h = new Harness([], {
      clock: { realtimeNs: () => wall, monotonicNs: () => wall, processCpuNs: () => proc, threadCpuNs: () => thread },
    });
    wall += 900n;
    proc += 300n;
    thread += 120n;
    expect(read(h, PROCESS)).toBe(300n);
    expect(read(h, THREAD)).toBe(120n);
  });

  it('without CPU time, report wall time since the start (and a thread no more than its process)', () => {
    let wall = 10n;
    let proc = 0n;
    const none = new Harness([], { clock: { realtimeNs: () => wall, monotonicNs: () => wall } });
    const processOnly = new Harness([], { clock: { realtimeNs: () => wall, monotonicNs: () => wall, processCpuNs: () => proc } });
    wall += 500n;
    proc += 200n;
    expect(read(none, PROCESS)).toBe(500n);
    expect(read(none, THREAD)).toBe(500n);
    expect(read(processOnly, PROCESS)).toBe(200n);
    expect(read(processOnly, THREAD)).toBe(200n);
    proc += 900n; // other threads of the process were busy: the thread is bounded by the wall clock
    expect(read(processOnly, THREAD)).toBe(500n);
  });

  it('on Node, the process clock is the process’s CPU time, which a blocked wait does not advance', () => {
    const before = process.cpuUsage();
    const h = new Harness([]);
    const after = process.cpuUsage();
    const wall0 = read(h, MONOTONIC);
    const p0 = read(h, PROCESS);
    const t0 = read(h, THREAD);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    const c1 = process.cpuUsage();
    const p1 = read(h, PROCESS);
    const c2 = process.cpuUsage();
    const t1 = read(h, THREAD);
    const wall1 = read(h, MONOTONIC);
    const us = (u: NodeJS.CpuUsage) => BigInt(u.user + u.system) * 1000n;
    // The instance started between `before` and `after`; p1 was read between c1 and c2.
    expect(p1).toBeGreaterThanOrEqual(us(c1) - us(after));
    expect(p1).toBeLessThanOrEqual(us(c2) - us(before));
    expect(wall1 - wall0).toBeGreaterThanOrEqual(240_000_000n);
    // Sleeping costs (almost) no CPU: neither clock follows the wall clock through the wait.
    expect(p1 - p0).toBeLessThan(150_000_000n);
    expect(t1 - t0).toBeLessThan(150_000_000n);
    expect(t1).toBeGreaterThanOrEqual(t0);
  });
});
