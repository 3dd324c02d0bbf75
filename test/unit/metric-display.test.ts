// How metrics are shown: the primary first, then by name, whatever order the stored object's keys
// come in (jsonb's: shortest first); counts of images as integers.
import fc from 'fast-check';
import { inDisplayOrder, isImageCount } from '../../src/contract/metric-display.ts';

describe('metrics in display order', () => {
  it('puts the primary metric first, then the rest by name', () => {
    // The keys of a detection test run as PostgreSQL's jsonb gave them back.
    const stored = ['recall', 'bbox/AR1', 'bbox/AR10', 'precision', 'bbox/AR100', 'bbox/mAP50', 'bbox/AR_small', 'bbox/mAP50-95', 'evaluated_images'];
    const shown = inDisplayOrder(
      stored.map((k) => [k, 0] as [string, number]),
      'bbox/mAP50-95',
    );
    expect(shown.map(([k]) => k)).toEqual([
      'bbox/mAP50-95',
      'bbox/AR1',
      'bbox/AR10',
      'bbox/AR100',
      'bbox/AR_small',
      'bbox/mAP50',
      'evaluated_images',
      'precision',
      'recall',
    ]);
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

  it('takes a whole number of images for a count, and anything else for a score', () => {
    expect([
      isImageCount('evaluated_images', 242),
      isImageCount('xai/explained_images', 3),
      isImageCount('evaluated_images', 0.5),
      isImageCount('accuracy', 1),
    ]).toEqual([true, true, false, false]);
  });
});
