import { describe, expect, it } from 'vitest';
import {
  createOutputFlow, createStdinRing, outputConsumed, outputPosted, outputStop, StdinBytes, StdinRingReader, StdinRingWriter,
} from '../src/sandbox/stdio.ts';

const bytes = (...xs: number[]) => Uint8Array.from(xs);

describe('stdin ring (SharedArrayBuffer, single producer, single consumer)', () => {
  it('keeps bytes in order across the wrap-around and ends with null after close', async () => {
    const sab = createStdinRing(8);
    const w = new StdinRingWriter(sab);
    const r = new StdinRingReader(sab);
    expect(r.ready()).toBe(false);
    await w.write(bytes(1, 2, 3, 4, 5));
    expect(r.ready()).toBe(true);
    expect([...r.read(3)!]).toEqual([1, 2, 3]);
    await w.write(bytes(6, 7, 8, 9, 10, 11)); // wraps: 2 left + 6 new = 8 = capacity
    expect([...r.read(100)!]).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    w.close();
    expect(r.ready()).toBe(true);
    expect(r.read(10)).toBeNull();
  });

  it('a writer waits while the ring is full and goes on once the reader makes room', async () => {
    const sab = createStdinRing(4);
    const w = new StdinRingWriter(sab);
    const r = new StdinRingReader(sab);
    let done = false;
    const writing = w.write(bytes(1, 2, 3, 4, 5, 6, 7)).then(() => { done = true; });
    await new Promise((res) => setTimeout(res, 20));
    expect(done).toBe(false);
    expect([...r.read(2)!]).toEqual([1, 2]);
    await new Promise((res) => setTimeout(res, 20));
    expect([...r.read(10)!]).toEqual([3, 4, 5, 6]);
    await new Promise((res) => setTimeout(res, 20));
    expect([...r.read(10)!]).toEqual([7]);
    await writing;
    expect(done).toBe(true);
  });

  it('writes after close are dropped; a zero-length read does not block', async () => {
    const sab = createStdinRing(4);
    const w = new StdinRingWriter(sab);
    const r = new StdinRingReader(sab);
    expect(r.read(0)).toEqual(new Uint8Array(0));
    w.close();
    await w.write(bytes(1, 2));
    expect(r.read(4)).toBeNull();
  });
});

describe('stdin given whole', () => {
  it('reads in pieces then ends', () => {
    const s = new StdinBytes(bytes(1, 2, 3));
    expect([...s.read(2)!]).toEqual([1, 2]);
    expect([...s.read(2)!]).toEqual([3]);
    expect(s.read(2)).toBeNull();
  });
});

describe('output flow control', () => {
  it('does not block under the window, blocks past it until bytes are consumed or the flow stops', () => {
    const flow = new Int32Array(createOutputFlow());
    outputPosted(flow, 100, 1000);
    outputConsumed(flow, 100);
    expect(flow[0]).toBe(0);
    outputStop(flow);
    outputPosted(flow, 5000, 1000); // past the window, but stopped: returns (a broken check would hang here)
    expect(flow[0]).toBe(5000);
  });
});
