// The pool of letterbox canvases: a buffer given back goes to the next image of its size, never
// to two at once, and the pool keeps no more than its bound.
import { BufferPool } from '../../src/runner/image/buffer-pool.ts';

describe('BufferPool', () => {
  it('hands a buffer given back to the next take of its size, and a new one for another size', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(1000);
    expect(a.byteLength).toBe(1000);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer.byteLength).toBe(1000);
    expect(pool.give(a.buffer)).toBe(true);
    const other = pool.take(999);
    expect(other.buffer).not.toBe(a.buffer);
    const again = pool.take(1000);
    expect(again.buffer).toBe(a.buffer);
    // Taken: not handed out a second time.
    expect(pool.take(1000).buffer).not.toBe(a.buffer);
  });

  it('hands out a buffer given back twice only once', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(64);
    pool.give(a.buffer);
    pool.give(a.buffer);
    const first = pool.take(64);
    const second = pool.take(64);
    expect(first.buffer).toBe(a.buffer);
    expect(second.buffer).not.toBe(a.buffer);
  });

  it('refuses buffers it did not hand out, and detached ones: the caller frees those', () => {
    const pool = new BufferPool(1 << 20);
    const foreign = new ArrayBuffer(64);
    expect(pool.give(foreign)).toBe(false);
    expect(pool.take(64).buffer).not.toBe(foreign);
    const a = pool.take(64);
    a.buffer.transfer(0);
    expect(pool.give(a.buffer)).toBe(false);
    expect(pool.give(new SharedArrayBuffer(64))).toBe(false);
  });

  it('keeps at most its bound, freeing the oldest buffers given back', () => {
    const pool = new BufferPool(2500);
    const [a, b, c] = [pool.take(1000), pool.take(1000), pool.take(1000)];
    [a, b, c].forEach((x) => pool.give(x.buffer));
    // 3,000 bytes given back over a bound of 2,500: the oldest is freed.
    expect(a.buffer.detached).toBe(true);
    expect(b.buffer.detached).toBe(false);
    const taken = [pool.take(1000).buffer, pool.take(1000).buffer];
    expect(taken.includes(b.buffer) && taken.includes(c.buffer)).toBe(true);
    expect(pool.take(1000).buffer).not.toBe(a.buffer);
  });
});
