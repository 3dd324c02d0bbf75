// How a job's metrics are shown (the CLI, the dashboard).
//
// Their order: PostgreSQL's jsonb keeps an object's keys shortest first, so the stored order reads
// as noise (recall, bbox/AR1, bbox/AR10, precision, bbox/AR100, ...). The job's primary metric
// comes first, then the rest by name (code units: bbox/AR1, bbox/AR10, bbox/AR100, bbox/AR_small;
// the same on every machine, whatever its locale).
export function inDisplayOrder<T>(entries: Array<[string, T]>, primary?: string | null): Array<[string, T]> {
  return [...entries].sort(([a], [b]) => (a === primary ? -1 : b === primary ? 1 : a < b ? -1 : a > b ? 1 : 0));
}

/** A count of images (evaluated_images, xai/explained_images): shown as the integer it is, not as a score. */
export const isImageCount = (name: string, value: number): boolean => Number.isInteger(value) && name.endsWith('images');
