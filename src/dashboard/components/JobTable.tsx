// A table of jobs (overview, history), with the actions a row allows.
import { api } from '../api.ts';
import { linkProps } from '../router.ts';
import { num, when } from './format.ts';

export interface JobRow {
  id: string;
  kind: 'test-runs' | 'inference-jobs';
  name: string | null;
  status: string;
  task_type: string;
  checkpoint_path: string;
  model_name: string | null;
  model_version: string | null;
  processed_images: number;
  total_images: number | null;
  primary_metric_name?: string | null;
  primary_metric_value?: number | null;
  created_at: string;
}

/** Test runs and inference jobs matching `query` (the list API's parameters), newest first. */
export async function listJobs(query: URLSearchParams): Promise<JobRow[]> {
  const [t, i] = await Promise.all([api('GET', `/test-runs?${query}`), api('GET', `/inference-jobs?${query}`)]);
  return [...t.items.map((r: JobRow) => ({ ...r, kind: 'test-runs' })), ...i.items.map((r: JobRow) => ({ ...r, kind: 'inference-jobs' }))].sort((a, b) =>
    b.created_at.localeCompare(a.created_at),
  );
}

export function JobTable({ rows, actions }: { rows: JobRow[]; actions?: (row: JobRow) => preact.ComponentChildren }) {
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">Job</th>
          <th scope="col">Kind</th>
          <th scope="col">Status</th>
          <th scope="col">Task</th>
          <th scope="col">Model</th>
          <th scope="col">Images</th>
          <th scope="col">Metric</th>
          <th scope="col">Created</th>
          {actions && <th scope="col">Actions</th>}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.id} data-job-id={r.id}>
            <td>
              <a {...linkProps(`/${r.kind}/${r.id}`)}>{r.name ?? r.id.slice(0, 8)}</a>
            </td>
            <td>{r.kind === 'test-runs' ? 'test run' : 'inference'}</td>
            <td>
              <span class={`status ${r.status}`}>{r.status}</span>
            </td>
            <td>{r.task_type}</td>
            <td>{r.model_name ? `${r.model_name}@${r.model_version}` : r.checkpoint_path.split('/').at(-1)}</td>
            <td>
              {r.processed_images}/{r.total_images ?? '?'}
            </td>
            <td>{r.primary_metric_name ? `${r.primary_metric_name} ${num(r.primary_metric_value)}` : '–'}</td>
            <td>{when(r.created_at)}</td>
            {actions && <td>{actions(r)}</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
