// GET /api/v1/test-runs/compare?ids=a,b[,...]: test runs of the same dataset side by side. The
// deltas are pure arithmetic over what the runs stored (last run minus first); the images on
// which they disagree come from the database, paged.
import type { TestRun } from '../../db/entities.ts';

type Num = number | null;

export interface RunComparison {
  runs: Array<Pick<TestRun, 'id' | 'name' | 'checkpoint_path' | 'model_name' | 'model_version' | 'primary_metric_name' | 'primary_metric_value'>>;
  /** Every numeric overall metric any run has: its value per run, and last minus first. */
  metrics: Array<{ name: string; values: Num[]; delta: Num }>;
  /** Per class (by name), each per-class figure the runs have: values per run and delta. */
  per_class: Array<{ class_name: string; metrics: Record<string, { values: Num[]; delta: Num }> }>;
}

const delta = (values: Num[]): Num => {
  const [first, last] = [values[0], values.at(-1)];
  return typeof first === 'number' && typeof last === 'number' ? last - first : null;
};

/** Why these runs cannot be compared, or null. */
export function incomparable(runs: TestRun[]): string | null {
  const unfinished = runs.filter((r) => r.status !== 'completed');
  if (unfinished.length > 0) return `only completed test runs compare: ${unfinished.map((r) => `${r.id} is ${r.status}`).join(', ')}`;
  const datasets = new Set(runs.map((r) => `${r.dataset_path} (${r.dataset_split})`));
  if (datasets.size > 1) return `the runs evaluate different datasets: ${[...datasets].join(', ')}`;
  return null;
}

export function compareTestRuns(runs: TestRun[]): RunComparison {
  const names = new Set<string>();
  for (const r of runs) for (const [k, v] of Object.entries(r.overall_metrics ?? {})) if (typeof v === 'number' || v === null) names.add(k);
  const metrics = [...names].sort().map((name) => {
    const values = runs.map((r) => {
      const v = (r.overall_metrics as Record<string, unknown> | null)?.[name];
      return typeof v === 'number' ? v : null;
    });
    return { name, values, delta: delta(values) };
  });
  const classes = new Set<string>();
  for (const r of runs) for (const c of r.per_class_metrics ?? []) classes.add(c.class_name);
  const per_class = [...classes].sort().map((class_name) => {
    const rows = runs.map((r) => (r.per_class_metrics ?? []).find((c) => c.class_name === class_name) as Record<string, unknown> | undefined);
    const keys = new Set<string>();
    for (const row of rows) for (const [k, v] of Object.entries(row ?? {})) if (typeof v === 'number' && k !== 'class_id') keys.add(k);
    const figures: Record<string, { values: Num[]; delta: Num }> = {};
    for (const k of [...keys].sort()) {
      const values = rows.map((row) => (typeof row?.[k] === 'number' ? (row[k] as number) : null));
      figures[k] = { values, delta: delta(values) };
    }
    return { class_name, metrics: figures };
  });
  return {
    runs: runs.map((r) => ({
      id: r.id,
      name: r.name,
      checkpoint_path: r.checkpoint_path,
      model_name: r.model_name,
      model_version: r.model_version,
      primary_metric_name: r.primary_metric_name,
      primary_metric_value: r.primary_metric_value,
    })),
    metrics,
    per_class,
  };
}
