// One job end to end through every real component: REST API -> Postgres -> subprocess runner
// (real ONNX Runtime) -> callback service -> Postgres + S3 -> REST API.
import { ResultsFile } from '../../src/contract/index.ts';
import { buildColorClassifier, COLOR_CLASSES, normalizedColor } from '../../src/samples/color-classifier.ts';
import { buildColorDataset, type DatasetFile } from '../../src/samples/color-dataset.ts';
import { referenceMetrics } from '../support/reference-metrics.ts';
import { alive } from '../support/processes.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

const NAMES = COLOR_CLASSES.map((c) => c.name);
const idOf = (name: string) => NAMES.indexOf(name);

let stack: TestStack;
let checkpoint: string;
let datasetPath: string;
let dataset: DatasetFile[];

const uploadAll = (prefix: string, files: ReadonlyArray<{ path: string; bytes: Uint8Array }>) => upload(stack.store, prefix, files);

beforeAll(async () => {
  stack = await startTestStack({ KINFER_RUNNER_BATCH_SIZE: '4' });
  checkpoint = `${stack.s3Prefix}/models/colors.onnx`;
  await stack.store.write(checkpoint, Buffer.from(buildColorClassifier().model));
  dataset = await buildColorDataset({
    perClass: 5,
    mislabeled: [
      ['red', 'green'],
      ['blue', 'cyan'],
      ['yellow', 'red'],
    ],
    corrupt: ['magenta'],
  });
  datasetPath = `${stack.s3Prefix}/datasets/colors`;
  await uploadAll(datasetPath, dataset);
});

afterAll(async () => {
  await stack?.stop();
});

describe('test run (evaluate)', () => {
  let run: any;

  beforeAll(async () => {
    const created = await stack.api('POST', '/test-runs', {
      name: 'colours',
      checkpoint_path: checkpoint,
      dataset_path: datasetPath,
      task_type: 'image_classification',
      training_job_id: 'train-42',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'pending', dataset_split: 'test', training_job_id: 'train-42' });
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);
    run = await stack.waitFor('test-runs', created.body.id);
  });

  it('completes with metrics equal to an independent computation', () => {
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    const evaluated = dataset.filter((f) => f.drawn !== null);
    // By construction the model predicts the drawn colour: it scores nearness to each prototype.
    const ref = referenceMetrics(
      evaluated.map((f) => idOf(f.label)),
      evaluated.map((f) => idOf(f.drawn!)),
      NAMES.length,
    );
    expect(run.overall_metrics.accuracy).toBeCloseTo(ref.accuracy, 12);
    expect(run.overall_metrics.precision).toBeCloseTo(ref.precision, 12);
    expect(run.overall_metrics.recall).toBeCloseTo(ref.recall, 12);
    expect(run.overall_metrics.f1).toBeCloseTo(ref.f1, 12);
    expect(run.confusion_matrix).toEqual(ref.confusion);
    expect(run.confusion_matrix[idOf('green')][idOf('red')]).toBe(1); // not diagonal
    run.per_class_metrics.forEach((c: any, i: number) => {
      expect(c).toMatchObject({ class_id: i, class_name: NAMES[i], support: ref.perClass[i]!.support });
      expect(c.precision).toBeCloseTo(ref.perClass[i]!.precision, 12);
      expect(c.recall).toBeCloseTo(ref.perClass[i]!.recall, 12);
      expect(c.f1).toBeCloseTo(ref.perClass[i]!.f1, 12);
    });
    expect(run.class_names).toEqual(NAMES);
    expect(run.primary_metric_name).toBe('accuracy');
    expect(run.primary_metric_value).toBeCloseTo(ref.accuracy, 12);
  });

  it('computes top-5 accuracy from the ranking by prototype distance', () => {
    const evaluated = dataset.filter((f) => f.drawn !== null);
    const proto = COLOR_CLASSES.map((c) => normalizedColor(c.rgb));
    const hits = evaluated.filter((f) => {
      const d = proto[idOf(f.drawn!)]!;
      const ranked = proto.map((p, k) => ({ k, dist: p.reduce((a, v, i) => a + (v - d[i]!) ** 2, 0) })).sort((a, b) => a.dist - b.dist);
      return ranked.slice(0, 5).some((r) => r.k === idOf(f.label));
    }).length;
    expect(run.overall_metrics.top5_accuracy).toBeCloseTo(hits / evaluated.length, 12);
  });

  it('counts the corrupt image as failed and still completes', () => {
    expect(run).toMatchObject({ total_images: dataset.length, processed_images: dataset.length, failed_images: 1, progress_percent: 100 });
    expect(run.overall_metrics.evaluated_images).toBe(dataset.length - 1);
    expect(run.started_at).not.toBeNull();
    expect(new Date(run.completed_at).getTime()).toBeGreaterThanOrEqual(new Date(run.started_at).getTime());
    expect(run.timings.images_per_second).toBeGreaterThan(0);
  });

  it('lists per-image results, filterable by correctness, with the error entry', async () => {
    const all = await stack.api('GET', `/test-runs/${run.id}/images?limit=1000`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ total_count: dataset.length, correct_count: dataset.length - 4, incorrect_count: 3, error_count: 1 });
    const wrong = await stack.api('GET', `/test-runs/${run.id}/images?filter_correct=false`);
    const planted = dataset.filter((f) => f.drawn !== null && f.drawn !== f.label).map((f) => f.path.replace(/^test\//, ''));
    expect(planted).toHaveLength(3);
    expect(wrong.body.images.map((i: any) => i.image_path).sort()).toEqual(planted.sort());
    for (const img of wrong.body.images) {
      const file = dataset.find((f) => f.path.endsWith(img.image_path))!;
      expect(img).toMatchObject({ true_label: file.label, predicted_label: file.drawn, is_correct: false });
      expect(img.predictions).toHaveLength(5);
    }
    const corrupt = all.body.images.find((i: any) => i.image_path.includes('corrupt'));
    expect(corrupt).toMatchObject({ is_correct: null, predicted_label: null, true_label: 'magenta' });
    expect(corrupt.error_message).toMatch(/cannot decode image/);
    const page = await stack.api('GET', `/test-runs/${run.id}/images?skip=10&limit=5`);
    expect(page.body.images.map((i: any) => i.image_index)).toEqual([10, 11, 12, 13, 14]);
  });

  it('writes results.json and images.jsonl in S3 under test-runs/{id}/', async () => {
    expect(run.results_path).toBe(`${stack.s3Prefix}/artifacts/test-runs/${run.id}/results.json`);
    const results = ResultsFile.parse(JSON.parse((await stack.store.read(run.results_path)).toString()));
    expect(results.metrics?.confusion_matrix).toEqual(run.confusion_matrix);
    expect(results.failed_images).toBe(1);
    const lines = (await stack.store.read(results.images_path)).toString().trim().split('\n');
    expect(lines).toHaveLength(dataset.length);
  });

  it('shows the run in the list, newest first, filterable by status', async () => {
    const list = await stack.api('GET', '/test-runs?status=completed');
    expect(list.body.items.map((r: any) => r.id)).toContain(run.id);
    const none = await stack.api('GET', '/test-runs?status=cancelled');
    expect(none.body.items.map((r: any) => r.id)).not.toContain(run.id);
  });

  it('refuses to cancel a finished run with 409', async () => {
    const res = await stack.api('POST', `/test-runs/${run.id}/cancel`);
    expect(res.status).toBe(409);
    expect(outcome(res.body)).toEqual({ status: 'completed', error_message: null });
  });
});

describe('inference jobs (predict)', () => {
  it('runs a batch, with a per-image error for a missing image', async () => {
    const red = dataset.find((f) => f.path.startsWith('test/red/red_0000'))!;
    const mislabeled = dataset.find((f) => f.path.includes('mislabeled_0'))!;
    const paths = [`${datasetPath}/${red.path}`, `${datasetPath}/${mislabeled.path}`, `${stack.s3Prefix}/nope.png`];
    const created = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'image_classification',
      inference_type: 'batch',
      input_config: { image_paths: paths },
    });
    expect(created.status).toBe(201);
    const job = await stack.waitFor('inference-jobs', created.body.id);
    expect(job).toMatchObject({ status: 'completed', total_images: 3, processed_images: 3, failed_images: 1 });
    const results = await stack.api('GET', `/inference-jobs/${job.id}/results`);
    expect(results.body.total_count).toBe(3);
    expect(results.body.results.map((r: any) => r.predicted_label)).toEqual(['red', 'red', null]);
    expect(results.body.results[2].error_message).toMatch(/not found/);
    expect(job.results_path).toBe(`${stack.s3Prefix}/artifacts/inference-jobs/${job.id}/results.json`);
  });

  it('runs a single image and a whole prefix', async () => {
    const single = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'image_classification',
      inference_type: 'single',
      input_config: { image_path: `${datasetPath}/${dataset[0]!.path}` },
    });
    const folder = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'image_classification',
      inference_type: 'dataset',
      input_config: { dataset_path: `${datasetPath}/test/blue` },
    });
    const [a, b] = await Promise.all([stack.waitFor('inference-jobs', single.body.id), stack.waitFor('inference-jobs', folder.body.id)]);
    expect(a).toMatchObject({ status: 'completed', total_images: 1, failed_images: 0 });
    expect(b).toMatchObject({ status: 'completed', total_images: dataset.filter((f) => f.path.startsWith('test/blue/')).length });
    const results = await stack.api('GET', `/inference-jobs/${b.id}/results?limit=2`);
    expect(results.body.results).toHaveLength(2);
    expect(results.body.results.every((r: any) => r.predicted_label === 'blue')).toBe(true);
  });
});

describe('a model that knows more classes than the dataset', () => {
  it('evaluates the dataset classes; a prediction outside them is an error in its own column', async () => {
    // The model knows six colours; the dataset has folders for three. A cyan image filed under
    // blue is predicted cyan: a class the dataset does not have.
    const three = COLOR_CLASSES.filter((c) => ['red', 'green', 'blue'].includes(c.name));
    const files = await buildColorDataset({ perClass: 2, classes: COLOR_CLASSES, mislabeled: [['cyan', 'blue']], seed: 11 });
    const subset = files.filter((f) => three.some((c) => c.name === f.label));
    const root = `${stack.s3Prefix}/datasets/three-colours`;
    await uploadAll(root, subset);
    const created = await stack.api('POST', '/test-runs', { checkpoint_path: checkpoint, dataset_path: root, task_type: 'image_classification' });
    expect(created.status).toBe(201);
    const run = await stack.waitFor('test-runs', created.body.id);
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    // Expected: scikit-learn's report over the labels in y_true or y_pred, by a naive reference.
    const labels = [...new Set([...subset.map((f) => idOf(f.label)), ...subset.map((f) => idOf(f.drawn!))])].sort((a, b) => a - b);
    const ref = referenceMetrics(
      subset.map((f) => labels.indexOf(idOf(f.label))),
      subset.map((f) => labels.indexOf(idOf(f.drawn!))),
      labels.length,
    );
    expect(run.class_names).toEqual(['red', 'green', 'blue', 'cyan']);
    expect(run.confusion_matrix).toEqual(ref.confusion);
    expect(run.per_class_metrics.map((c: any) => [c.class_id, c.support])).toEqual(labels.map((id, i) => [id, ref.perClass[i]!.support]));
    expect(run.overall_metrics.accuracy).toBeCloseTo(ref.accuracy, 12);
    expect(run.overall_metrics.precision).toBeCloseTo(ref.precision, 12);
    expect(run.overall_metrics.f1).toBeCloseTo(ref.f1, 12);
  });

  it('refuses at submit a dataset class the model does not know', async () => {
    const root = `${stack.s3Prefix}/datasets/unknown-class`;
    const [file] = dataset;
    await uploadAll(root, [
      { path: 'test/zebra/z.png', bytes: file!.bytes },
      { path: 'test/red/r.png', bytes: file!.bytes },
    ]);
    const res = await stack.api('POST', '/test-runs', { checkpoint_path: checkpoint, dataset_path: root, task_type: 'image_classification' });
    expect(res.status).toBe(400);
    expect(res.body.fields).toEqual([
      { field: 'dataset_path', message: `dataset class folders not among the model's classes: zebra (model classes: ${NAMES.join(', ')})` },
    ]);
  });
});

describe('bad input', () => {
  it('names every bad field with 400', async () => {
    const res = await stack.api('POST', '/test-runs', { checkpoint_path: 'ftp://x', task_type: 'image_segmentation', surprise: 1 });
    expect(res.status).toBe(400);
    const fields = res.body.fields.map((f: any) => f.field).sort();
    expect(fields).toEqual(['checkpoint_path', 'dataset_path', 'surprise', 'task_type']);
  });

  it('refuses a model or dataset split that does not exist', async () => {
    const res = await stack.api('POST', '/test-runs', {
      checkpoint_path: `${stack.s3Prefix}/models/missing.onnx`,
      dataset_path: datasetPath,
      task_type: 'image_classification',
    });
    expect(res.status).toBe(400);
    expect(res.body.fields).toEqual([{ field: 'checkpoint_path', message: expect.stringContaining('no such object') }]);
    const split = await stack.api('POST', '/test-runs', {
      checkpoint_path: checkpoint,
      dataset_path: datasetPath,
      dataset_split: 'val',
      task_type: 'image_classification',
    });
    expect(split.status).toBe(400);
    expect(split.body.fields[0].field).toBe('dataset_split');
  });

  it('refuses unknown tasks and XAI that this runner does not implement, instead of pretending', async () => {
    const unknown = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'depth_estimation',
      inference_type: 'single',
      input_config: { image_path: '/a.png' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.fields.map((f: any) => f.field)).toEqual(['task_type']);
    const res = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'object_detection',
      inference_type: 'single',
      input_config: { image_paths: ['/a.png'] },
      enable_xai: true,
      xai_method: 'lime',
    });
    expect(res.status).toBe(400);
    expect(res.body.fields.map((f: any) => f.field).sort()).toEqual(['input_config', 'xai_method']);
  });

  it('answers 404 for unknown or malformed ids', async () => {
    expect((await stack.api('GET', '/test-runs/6f1c2d4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f')).status).toBe(404);
    expect((await stack.api('GET', '/inference-jobs/not-a-uuid')).status).toBe(404);
    expect((await stack.api('POST', '/inference-jobs/6f1c2d4e-8a3b-4c5d-9e7f-0a1b2c3d4e5f/cancel')).status).toBe(404);
  });

  it('rejects bad pagination with the parameter named', async () => {
    const res = await stack.api('GET', '/test-runs?limit=0');
    expect(res.status).toBe(400);
    expect(res.body.fields[0].field).toBe('limit');
  });

  it('refuses at submit a checkpoint that is not an ONNX model, with the reason', async () => {
    const bogus = `${stack.s3Prefix}/models/bogus.onnx`;
    await stack.store.write(bogus, Buffer.from('definitely not protobuf'));
    const res = await stack.api('POST', '/test-runs', { checkpoint_path: bogus, dataset_path: datasetPath, task_type: 'image_classification' });
    expect(res.status).toBe(400);
    expect(res.body.fields).toEqual([{ field: 'checkpoint_path', message: expect.stringMatching(/^not an ONNX model: /) }]);
  });
});

describe('runner lifecycle', () => {
  let bigDataset: string;

  beforeAll(async () => {
    const files = await buildColorDataset({ perClass: 100, seed: 3 });
    bigDataset = `${stack.s3Prefix}/datasets/big`;
    await uploadAll(bigDataset, files);
  });

  const startBigRun = async () => {
    const created = await stack.api('POST', '/test-runs', { checkpoint_path: checkpoint, dataset_path: bigDataset, task_type: 'image_classification' });
    expect(created.status).toBe(201);
    await stack.waitFor('test-runs', created.body.id, (j) => j.status !== 'pending');
    const { rows } = await stack.db.query('SELECT executor_ref FROM test_runs WHERE id = $1', [created.body.id]);
    return { id: created.body.id as string, ref: String(rows[0].executor_ref), pid: Number(/^pid:(\d+)/.exec(rows[0].executor_ref)![1]) };
  };

  it('cancels a running job: status cancelled, the runner process group stopped', async () => {
    const { id, pid } = await startBigRun();
    const res = await stack.api('POST', `/test-runs/${id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
    const deadline = Date.now() + 15_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
    const after = await stack.api('GET', `/test-runs/${id}`);
    expect(after.body.status).toBe('cancelled');
    expect(after.body.completed_at).not.toBeNull();
    expect((await stack.api('POST', `/test-runs/${id}/cancel`)).status).toBe(409);
  });

  it('fails a job whose runner dies without reporting, with the signal in the reason', async () => {
    const { id, pid } = await startBigRun();
    process.kill(pid, 'SIGKILL');
    const run = await stack.waitFor('test-runs', id);
    expect(run.status).toBe('failed');
    expect(run.error_message).toMatch(/runner was killed by SIGKILL without reporting completion/);
  });

  describe('controller restarts (the runner is held with SIGSTOP so the restart lands mid-run)', () => {
    const imageCount = async (id: string) => (await stack.db.query('SELECT count(*)::int AS n FROM test_image_results WHERE test_run_id = $1', [id])).rows[0].n;

    it('keeps a running job: the runner goes on, no second runner starts, the job completes', async () => {
      const { id, pid, ref } = await startBigRun();
      process.kill(pid, 'SIGSTOP');
      try {
        await stack.restartController('SIGKILL');
        await new Promise((r) => setTimeout(r, 500));
        expect((await stack.api('GET', `/test-runs/${id}`)).body.status).toBe('running');
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      const run = await stack.waitFor('test-runs', id);
      expect(run).toMatchObject({ status: 'completed', processed_images: 600, failed_images: 0 });
      const { rows } = await stack.db.query('SELECT executor_ref FROM test_runs WHERE id = $1', [id]);
      expect(rows[0].executor_ref).toBe(ref);
      expect(await imageCount(id)).toBe(600);
    });

    it('fails a job whose runner was lost while the controller was down', async () => {
      const { id, pid } = await startBigRun();
      process.kill(pid, 'SIGSTOP');
      await stack.restartController('SIGKILL', () => {
        process.kill(pid, 'SIGKILL');
      });
      const run = await stack.waitFor('test-runs', id);
      expect(run.status).toBe('failed');
      expect(run.error_message).toMatch(/runner process lost/);
    });

    it('fails a job when a runner adopted after a restart dies later', async () => {
      const { id, pid } = await startBigRun();
      process.kill(pid, 'SIGSTOP');
      await stack.restartController('SIGKILL');
      expect((await stack.api('GET', `/test-runs/${id}`)).body.status).toBe('running');
      process.kill(pid, 'SIGKILL');
      const run = await stack.waitFor('test-runs', id);
      expect(run.status).toBe('failed');
      expect(run.error_message).toMatch(/started by a previous controller/);
    });
  });
});

describe('metrics', () => {
  it('both services expose Prometheus metrics, with request durations by route pattern', async () => {
    await stack.api('GET', '/test-runs');
    const controller = await (await fetch(`${stack.apiUrl.replace(/\/api\/v1$/, '')}/metrics`)).text();
    expect(controller).toMatch(
      /kinfer_http_request_duration_seconds_count\{service="controller",method="GET",route="\/api\/v1\/test-runs",status="200"\} [1-9]/,
    );
    expect(controller).toMatch(/route="\/api\/v1\/test-runs\/:id"/);
    expect(controller).toMatch(/^kinfer_process_resident_memory_bytes\{service="controller"\} \d+/m);
    const callback = await (await fetch(`${stack.callbackUrl}/metrics`)).text();
    expect(callback).toMatch(/kinfer_nodejs_eventloop_lag_seconds\{service="callback"\}/);
  });
});
