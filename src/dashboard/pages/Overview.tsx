// `/`: what is running and what finished last, and the ways in.
import { useEffect, useState } from 'preact/hooks';
import { JobTable, listJobs, type JobRow } from '../components/JobTable.tsx';
import { linkProps } from '../router.ts';

export function Overview() {
  const [rows, setRows] = useState<JobRow[] | null>(null);
  useEffect(() => {
    void listJobs(new URLSearchParams({ limit: '10' })).then((jobs) => setRows(jobs.slice(0, 10)));
  }, []);
  const active = rows?.filter((r) => r.status === 'pending' || r.status === 'running').length ?? 0;
  return (
    <main>
      <h1>Overview</h1>
      <p>
        <a {...linkProps('/test-runs/new')} class="button">
          New test run
        </a>{' '}
        <a {...linkProps('/predict')} class="button">
          Predict one image
        </a>{' '}
        <a {...linkProps('/history')}>All jobs</a>
      </p>
      <section aria-labelledby="recent">
        <h2 id="recent">Recent jobs {rows && <small>({active} active)</small>}</h2>
        {rows === null ? <p aria-busy="true">Loading…</p> : rows.length === 0 ? <p>No jobs yet.</p> : <JobTable rows={rows} />}
      </section>
    </main>
  );
}
