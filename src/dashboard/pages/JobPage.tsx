// `/test-runs/{id}` and `/inference-jobs/{id}`: live progress (server-sent events: the page
// updates itself until the job ends), metric cards, the per-class table, the confusion matrix, and
// the per-image results, paged from the server (a run of 100k images is never loaded whole).
import { useEffect, useState } from 'preact/hooks';
import { inDisplayOrder, isImageCount } from '../../contract/metric-display.ts';
import { api, blobUrl, events } from '../api.ts';
import { ConfusionMatrix } from '../components/ConfusionMatrix.tsx';
import { PrCurves } from '../components/PrCurves.tsx';
import { isActive, num, pct, when } from '../components/format.ts';
import { linkProps, navigate } from '../router.ts';

const PAGE = 50;

function Progress({ job }: { job: any }) {
  const total = job.total_images ?? 0;
  return (
    <p>
      <span class={`status ${job.status}`} data-testid="status">
        {job.status}
      </span>{' '}
      <progress max={total || 1} value={job.processed_images} aria-label="Images processed" /> {job.processed_images}/{job.total_images ?? '?'} images
      {job.failed_images > 0 && <> ({job.failed_images} could not be read)</>}
      {job.error_message && <span role="alert"> — {job.error_message}</span>}
    </p>
  );
}

function MetricCards({ metrics, primary }: { metrics: Record<string, unknown>; primary?: string | null }) {
  const cards = inDisplayOrder(Object.entries(metrics), primary).filter(([, v]) => typeof v === 'number');
  return (
    <ul class="cards" aria-label="Metrics">
      {cards.map(([k, v]) => (
        <li>
          <span class="label">{k}</span>
          <span class="value">
            {isImageCount(k, v as number)
              ? String(v)
              : k.includes('accuracy') || k.startsWith('m') || k.includes('recall') || k.includes('precision')
                ? pct(v)
                : num(v)}
          </span>
        </li>
      ))}
    </ul>
  );
}

function PerClass({ rows }: { rows: Array<Record<string, unknown>> }) {
  const keys = ['precision', 'recall', 'f1', 'ap50', 'ap', 'iou', 'support'].filter((k) => rows.some((r) => typeof r[k] === 'number'));
  return (
    <table>
      <caption>Per class</caption>
      <thead>
        <tr>
          <th scope="col">Class</th>
          {keys.map((k) => (
            <th scope="col">{k}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr>
            <th scope="row">{String(r.class_name)}</th>
            {keys.map((k) => (
              <td>{k === 'support' ? String(r[k]) : num(r[k])}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A row's thumbnail, fetched with the caller's credentials (an <img src> could not send them). */
function Thumb({ segment, id, index, name }: { segment: string; id: string; index: number; name: string }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let gone = false;
    let made: string | null = null;
    blobUrl(`/${segment}/${id}/images/${index}/thumbnail`).then(
      (u) => {
        made = u;
        if (!gone) setUrl(u);
      },
      () => undefined,
    );
    return () => {
      gone = true;
      if (made) URL.revokeObjectURL(made);
    };
  }, [segment, id, index]);
  return url ? <img src={url} alt={name} class="thumb" loading="lazy" /> : <span class="thumb" aria-hidden="true" />;
}

function Images({ segment, id, query }: { segment: string; id: string; query: URLSearchParams }) {
  const isTest = segment === 'test-runs';
  const [filter, setFilter] = useState<'all' | 'correct' | 'incorrect'>('all');
  const [skip, setSkip] = useState(0);
  const [page, setPage] = useState<any>(null);
  const [visual, setVisual] = useState<{ path: string; url: string } | null>(null);
  const cell = { true: query.get('true'), pred: query.get('pred') };
  useEffect(() => {
    const q = new URLSearchParams({ skip: String(skip), limit: String(PAGE) });
    if (isTest && filter !== 'all') q.set('filter_correct', String(filter === 'correct'));
    if (isTest && cell.true) q.set('true_label', cell.true);
    if (isTest && cell.pred) q.set('predicted_label', cell.pred);
    void api('GET', `/${segment}/${id}/${isTest ? 'images' : 'results'}?${q}`).then(setPage);
  }, [filter, skip, cell.true, cell.pred]);
  const items: any[] = page ? (isTest ? page.images : page.items) : [];
  const total = page ? (isTest ? page.filtered_count : page.total_count) : 0;
  const show = async (path: string) => {
    const rel = path.split('/').slice(-2).join('/');
    setVisual({ path, url: await blobUrl(`/${segment}/${id}/artifacts/${rel}`) });
  };
  return (
    <section id="images" aria-labelledby="images-title">
      <h2 id="images-title">Images</h2>
      {isTest && (
        <fieldset class="filter">
          <legend>Show</legend>
          {(['all', 'correct', 'incorrect'] as const).map((f) => (
            <label>
              <input
                type="radio"
                name="filter"
                checked={filter === f}
                onChange={() => {
                  setFilter(f);
                  setSkip(0);
                }}
              />
              {f[0]!.toUpperCase() + f.slice(1)}
            </label>
          ))}
        </fieldset>
      )}
      {(cell.true || cell.pred) && (
        <p>
          Images of <strong>{cell.true}</strong> predicted as <strong>{cell.pred}</strong>. <a {...linkProps(`/${segment}/${id}#images`)}>Show all</a>
        </p>
      )}
      <table data-testid="images">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Image</th>
            <th scope="col">File</th>
            {isTest && <th scope="col">True</th>}
            <th scope="col">Predicted</th>
            <th scope="col">Confidence</th>
            {isTest && <th scope="col">Result</th>}
            <th scope="col">Visualization</th>
          </tr>
        </thead>
        <tbody>
          {items.map((r) => (
            <tr data-image={r.image_path}>
              <td>{r.image_index}</td>
              <td>{r.error_message ? '–' : <Thumb segment={segment} id={id} index={r.image_index} name={r.image_path} />}</td>
              <td>{r.image_path}</td>
              {isTest && <td>{r.true_label ?? '–'}</td>}
              <td>{r.error_message ? '–' : (r.predicted_label ?? (r.detections ? `${r.detections.length} objects` : '–'))}</td>
              <td>{num(r.confidence, 3)}</td>
              {isTest && <td>{r.error_message ? <span class="status failed">error: {r.error_message}</span> : r.is_correct ? 'correct' : 'incorrect'}</td>}
              <td>
                {r.visualization_path ? (
                  <button type="button" onClick={() => show(r.visualization_path)}>
                    View
                  </button>
                ) : r.xai?.heatmap_path ? (
                  <button type="button" onClick={() => show(r.xai.heatmap_path)}>
                    Explanation
                  </button>
                ) : (
                  '–'
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        {total === 0 ? 'No images.' : `${skip + 1}–${Math.min(skip + PAGE, total)} of ${total}`}{' '}
        <button type="button" disabled={skip === 0} onClick={() => setSkip(Math.max(0, skip - PAGE))}>
          Previous
        </button>{' '}
        <button type="button" disabled={skip + PAGE >= total} onClick={() => setSkip(skip + PAGE)}>
          Next
        </button>
      </p>
      {visual && (
        <figure>
          <img src={visual.url} alt={`Visualization of ${visual.path}`} />
          <figcaption>{visual.path}</figcaption>
        </figure>
      )}
    </section>
  );
}

export function JobPage({ segment, id, query }: { segment: 'test-runs' | 'inference-jobs'; id: string; query: URLSearchParams }) {
  const [job, setJob] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setJob(null);
    void api('GET', `/${segment}/${id}`).then(setJob, (err: Error) => setError(err.message));
    // Live: every status change and progress report, then the finished job; no polling.
    return events(segment, id, (event, data) => {
      if (event === 'status' || event === 'done') setJob(data);
      else if (event === 'progress') setJob((j: any) => (j ? { ...j, ...data } : j));
    });
  }, [segment, id]);
  if (error)
    return (
      <main>
        <h1>Not found</h1>
        <p role="alert">{error}</p>
      </main>
    );
  if (!job)
    return (
      <main aria-busy="true">
        <p>Loading…</p>
      </main>
    );
  const done = !isActive(job.status);
  return (
    <main>
      <h1>
        {segment === 'test-runs' ? 'Test run' : 'Inference job'} {job.name ?? job.id.slice(0, 8)}
      </h1>
      <p class="meta">
        {job.task_type} · {job.model_name ? `${job.model_name}@${job.model_version}` : job.checkpoint_path}
        {job.dataset_path && ` · ${job.dataset_path} (${job.dataset_split})`} · created {when(job.created_at)}
      </p>
      <Progress job={job} />
      {isActive(job.status) && (
        <button type="button" onClick={() => void api('POST', `/${segment}/${id}/cancel`)}>
          Cancel
        </button>
      )}
      {segment === 'test-runs' && done && job.overall_metrics && (
        <>
          <MetricCards metrics={job.overall_metrics} primary={job.primary_metric_name} />
          {job.per_class_metrics && <PerClass rows={job.per_class_metrics} />}
          {job.per_class_metrics && <PrCurves rows={job.per_class_metrics} />}
          {job.confusion_matrix?.length > 0 && job.class_names && <ConfusionMatrix runId={id} classes={job.class_names} matrix={job.confusion_matrix} />}
          <p>
            <a {...linkProps(`/history`)}>Compare with another run</a> — pick one in{' '}
            <button type="button" class="link" onClick={() => navigate(`/history`)}>
              History
            </button>
          </p>
        </>
      )}
      {(job.processed_images > 0 || done) && <Images segment={segment} id={id} query={query} />}
    </main>
  );
}
