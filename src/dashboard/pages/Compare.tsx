// `/compare?ids=a,b`: test runs of one dataset side by side: metric deltas, per-class deltas,
// and the images on which they disagree.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import { num } from '../components/format.ts';
import { linkProps } from '../router.ts';

const signed = (v: number | null) => (v === null ? '–' : `${v > 0 ? '+' : ''}${v.toFixed(4)}`);

export function Compare({ ids }: { ids: string[] }) {
  const [data, setData] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (ids.length < 2) return setError('Choose at least two test runs (History: compare).');
    void api('GET', `/test-runs/compare?ids=${ids.join(',')}&limit=200`).then(setData, (err: Error & { fields?: Array<{ message: string }> }) =>
      setError(err.fields?.[0]?.message ?? err.message),
    );
  }, [ids.join(',')]);
  if (error)
    return (
      <main>
        <h1>Compare</h1>
        <p role="alert">{error}</p>
      </main>
    );
  if (!data)
    return (
      <main aria-busy="true">
        <p>Loading…</p>
      </main>
    );
  const label = (r: any) => r.name ?? r.id.slice(0, 8);
  return (
    <main>
      <h1>Compare {data.runs.map(label).join(' · ')}</h1>
      <table data-testid="metric-deltas">
        <caption>Metrics (delta: last minus first)</caption>
        <thead>
          <tr>
            <th scope="col">Metric</th>
            {data.runs.map((r: any) => (
              <th scope="col">
                <a {...linkProps(`/test-runs/${r.id}`)}>{label(r)}</a>
              </th>
            ))}
            <th scope="col">Delta</th>
          </tr>
        </thead>
        <tbody>
          {data.metrics.map((m: any) => (
            <tr>
              <th scope="row">{m.name}</th>
              {m.values.map((v: number | null) => (
                <td>{num(v)}</td>
              ))}
              <td>{signed(m.delta)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <table>
        <caption>Per class (delta of each figure)</caption>
        <thead>
          <tr>
            <th scope="col">Class</th>
            {Object.keys(data.per_class[0]?.metrics ?? {}).map((k) => (
              <th scope="col">{k}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {data.per_class.map((c: any) => (
            <tr>
              <th scope="row">{c.class_name}</th>
              {Object.values(c.metrics).map((f: any) => (
                <td>{signed(f.delta)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <table data-testid="disagreements">
        <caption>Images where they disagree ({data.disagreements.total_count})</caption>
        <thead>
          <tr>
            <th scope="col">File</th>
            <th scope="col">True</th>
            {data.runs.map((r: any) => (
              <th scope="col">{label(r)}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {data.disagreements.items.map((i: any) => (
            <tr>
              <td>{i.image_path}</td>
              <td>{i.true_label ?? '–'}</td>
              {i.runs.map((r: any) => (
                <td class={r?.is_correct ? 'ok' : 'bad'}>{r ? `${r.predicted_label ?? 'error'}${r.is_correct ? ' ✓' : ''}` : 'absent'}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
