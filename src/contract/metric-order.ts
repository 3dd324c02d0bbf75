// The order a job's metrics are shown in (the CLI, the dashboard). PostgreSQL's jsonb keeps an
// object's keys shortest first, so the stored order reads as noise (recall, bbox/AR1, bbox/AR10,
// precision, bbox/AR100, ...). The job's primary metric comes first, then the rest by name, with
// the numbers in names by value (bbox/AR1, bbox/AR10, bbox/AR100; mAP50 before mAP50-95).
const byName = new Intl.Collator('en', { numeric: true });

export function inDisplayOrder<T>(entries: Array<[string, T]>, primary?: string | null): Array<[string, T]> {
  // Code units break the collator's ties: one order for any order the keys come in.
  return [...entries].sort(([a], [b]) => (a === primary ? -1 : b === primary ? 1 : byName.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0)));
}
