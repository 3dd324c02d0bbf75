// The order metrics are shown in: the primary first, then by name with numbers by value, whatever
// order the stored object's keys come in (jsonb's: shortest first).
import fc from 'fast-check';
import { inDisplayOrder } from '../../src/contract/metric-order.ts';

describe('metrics in display order', () => {
  it('puts the primary metric first, then the rest by name with numbers by value', () => {
    // The keys of a detection test run as PostgreSQL's jsonb gave them back.
    const stored = ['recall', 'bbox/AR1', 'bbox/AR10', 'precision', 'bbox/AR100', 'bbox/mAP50', 'bbox/mAP75', 'bbox/mAP50-95', 'evaluated_images'];
    expect(
      inDisplayOrder(
        stored.map((k) => [k, 0] as [string, number]),
        'bbox/mAP50-95',
      ).map(([k]) => k),
    ).toEqual(['bbox/mAP50-95', 'bbox/AR1', 'bbox/AR10', 'bbox/AR100', 'bbox/mAP50', 'bbox/mAP75', 'evaluated_images', 'precision', 'recall']);
  });

  it('gives the same order whatever order the keys come in, and keeps each value with its name', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1 }), { maxLength: 12 }), fc.option(fc.string()), (names, primary) => {
        const entries = names.map((n, i) => [n, i] as [string, number]);
        const shown = inDisplayOrder(entries, primary);
        expect(inDisplayOrder([...entries].reverse(), primary)).toEqual(shown);
        expect([...shown].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))).toEqual([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
        if (primary !== null && names.includes(primary)) expect(shown[0]![0]).toBe(primary);
      }),
    );
  });
});
