// `/history`: every test run and inference job, filtered by status, task, model and date; cancel
// and delete (with confirmation) on each row.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { isActive } from '../components/format.ts';
import { JobTable, listJobs, type JobRow } from '../components/JobTable.tsx';
import { navigate } from '../router.ts';

const STATUSES = ['', 'pending', 'running', 'completed', 'failed', 'cancelled'];
const TASKS = ['', 'image_classification', 'object_detection', 'instance_segmentation', 'pose_estimation', 'semantic_segmentation'];

export function History() {
  const [filters, setFilters] = useState({ status: '', task_type: '', model: '', since: '', until: '' });
  const [rows, setRows] = useState<JobRow[] | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const [selected, setSelected] = useState<string[]>([]);
  useEffect(() => {
    const q = new URLSearchParams({ limit: '200' });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, k === 'since' || k === 'until' ? new Date(v).toISOString() : v);
    void listJobs(q).then(setRows);
  }, [filters, version]);
  const set = (k: keyof typeof filters) => (e: Event) => setFilters({ ...filters, [k]: (e.currentTarget as HTMLInputElement).value });
  const act = async (row: JobRow, what: 'cancel' | 'delete') => {
    const label = row.name ?? row.id;
    if (what === 'delete' && !window.confirm(`Delete ${label}, its results and its artifacts? This cannot be undone.`)) return;
    try {
      if (what === 'delete') {
        await api('DELETE', `/${row.kind}/${row.id}`);
        // Gone from the table as the message says so, not when the list comes back.
        setRows((shown) => shown?.filter((r) => r.id !== row.id) ?? null);
      } else await api('POST', `/${row.kind}/${row.id}/cancel`);
      setMessage(`${what === 'delete' ? 'Deleted' : 'Cancelled'} ${label}.`);
    } catch (err) {
      setMessage(`Could not ${what} ${label}: ${(err as Error).message}`);
    }
    setVersion(version + 1);
  };
  return (
    <main>
      <h1>History</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={filters.status} onChange={set('status')}>
            {STATUSES.map((s) => (
              <option value={s}>{s || 'any'}</option>
            ))}
          </select>
        </label>
        <label>
          Task
          <select value={filters.task_type} onChange={set('task_type')}>
            {TASKS.map((t) => (
              <option value={t}>{t || 'any'}</option>
            ))}
          </select>
        </label>
        <label>
          Model or checkpoint
          <input type="search" value={filters.model} onChange={set('model')} />
        </label>
        <label>
          From
          <input type="date" value={filters.since} onChange={set('since')} />
        </label>
        <label>
          To
          <input type="date" value={filters.until} onChange={set('until')} />
        </label>
      </form>
      {message && <p role="status">{message}</p>}
      <p>
        <button type="button" disabled={selected.length < 2} onClick={() => navigate(`/compare?ids=${selected.join(',')}`)}>
          Compare selected test runs ({selected.length})
        </button>
      </p>
      {rows === null ? (
        <p aria-busy="true">Loading…</p>
      ) : (
        <JobTable
          rows={rows}
          actions={(r) => (
            <>
              {r.kind === 'test-runs' && r.status === 'completed' && (
                <label class="inline">
                  <input
                    type="checkbox"
                    checked={selected.includes(r.id)}
                    onChange={(e) => setSelected(e.currentTarget.checked ? [...selected, r.id] : selected.filter((s) => s !== r.id))}
                  />{' '}
                  Compare <span class="visually-hidden">{r.name ?? r.id}</span>
                </label>
              )}{' '}
              {isActive(r.status) ? (
                <button type="button" onClick={() => act(r, 'cancel')}>
                  Cancel
                </button>
              ) : (
                <button type="button" class="danger" onClick={() => act(r, 'delete')} aria-label={`Delete ${r.name ?? r.id}`}>
                  Delete
                </button>
              )}
            </>
          )}
        />
      )}
    </main>
  );
}
