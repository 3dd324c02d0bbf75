import fc from 'fast-check';
import { TokenBucket } from '../../src/kube/token-bucket.ts';

describe('TokenBucket', () => {
  it('gives burst tokens at once, then qps a second', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false]);
    now = 99; // 0.99 of a token: not yet
    expect(bucket.tryTake()).toBe(false);
    now = 100;
    expect(bucket.tryTake()).toBe(true);
    now = 10_000; // a long pause refills to burst, not beyond
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false]);
  });

  it('makes waiters queue: the k-th reservation past the burst waits k/qps seconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 200 }), (qps, burst, extra) => {
        const bucket = new TokenBucket(qps, burst, () => 0);
        for (let i = 0; i < burst; i++) expect(bucket.reserve()).toBe(0);
        for (let k = 1; k <= extra; k++) expect(bucket.reserve()).toBeCloseTo((k / qps) * 1000, 6);
      }),
    );
  });

  it('holds a rate over time: n takes at qps q span about (n - burst) / q seconds', async () => {
    const bucket = new TokenBucket(200, 5);
    const started = performance.now();
    await Promise.all(Array.from({ length: 25 }, () => bucket.take()));
    // 20 tokens past the burst at 200/s: at least 100 ms (timers never fire early).
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  it('refuses a bucket that would never give a token', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/qps > 0/);
    expect(() => new TokenBucket(1, 0)).toThrow(/burst >= 1/);
  });
});
