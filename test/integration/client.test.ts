// The API a dashboard and the CLI client need, on the real stack (controller, callback service,
// runners as processes; Postgres; S3): live progress as server-sent events, artifacts through the
// API, deleting a finished job (rows and artifacts), comparing test runs, the OpenAPI document;
// and `kinfer test-run|inference|watch|open` against the running server.
import { resolve } from 'node:path';
import { buildColorClassifier, COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { runCommand } from '../support/processes.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

const KINFER = resolve('bin/kinfer');
let stack: TestStack;
let dataset: string;
let good: string;
let swapped: string;

const kinfer = (args: string[]) =>
  runCommand(KINFER, args, { env: { ...process.env, NODE_OPTIONS: '', KINFER_API_URL: stack.apiUrl, KINFER_TOKEN: stack.adminToken } });
const http = async (method: string, path: string) => {
  const res = await fetch(`${stack.apiUrl}${path}`, { method, headers: stack.bearer });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

/** Every event of a job's stream until it ends. */
async function events(segment: string, id: string): Promise<Array<{ event: string; data: any }>> {
  const res = await fetch(`${stack.apiUrl}/${segment}/${id}/events`, { headers: stack.bearer });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('event: '))
    .map((b) => ({ event: /^event: (.*)$/m.exec(b)![1]!, data: JSON.parse(/^data: (.*)$/m.exec(b)![1]!) }));
}

beforeAll(async () => {
  stack = await startTestStack({ KINFER_RUNNER_BATCH_SIZE: '2' });
  dataset = `${stack.s3Prefix}/client/data`;
  good = `${stack.s3Prefix}/client/good.onnx`;
  swapped = `${stack.s3Prefix}/client/swapped.onnx`;
  await upload(stack.store, dataset, await buildColorDataset({ perClass: 3, corrupt: ['red'] }));
  await stack.store.write(good, Buffer.from(buildColorClassifier().model));
  // Red and green swapped: it calls red images green and green ones red.
  const classes = COLOR_CLASSES.map((c) =>
    c.name === 'red' ? { ...c, rgb: COLOR_CLASSES[1]!.rgb } : c.name === 'green' ? { ...c, rgb: COLOR_CLASSES[0]!.rgb } : c,
  );
  expect([COLOR_CLASSES[0]!.name, COLOR_CLASSES[1]!.name]).toEqual(['red', 'green']);
  await stack.store.write(swapped, Buffer.from(buildColorClassifier({ classes }).model));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('the client API and the CLI client', () => {
  let first: any;
  let second: any;

  it('kinfer test-run create --watch follows the run to its end and prints what GET returns', async () => {
    const res = await kinfer([
      'test-run',
      'create',
      '--checkpoint',
      good,
      '--dataset',
      dataset,
      '--task',
      'image_classification',
      '--name',
      'good',
      '--watch',
      '-o',
      'json',
    ]);
    expect([res.code, res.stderr.split('\n').filter((l) => /error/i.test(l))]).toEqual([0, []]);
    first = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
    const stored = JSON.parse((await http('GET', `/test-runs/${first.id}`)).text);
    expect(outcome(stored)).toEqual({ status: 'completed', error_message: null });
    expect(first).toEqual(stored);
    expect(stored.total_images).toBe(3 * COLOR_CLASSES.length + 1);
    // get, list, open, watch of a finished run.
    expect(JSON.parse((await kinfer(['test-run', 'get', first.id, '-o', 'json'])).stdout)).toEqual(stored);
    const list = JSON.parse((await kinfer(['test-run', 'list', '-o', 'json'])).stdout);
    expect(list.items.map((j: { id: string }) => j.id)).toContain(first.id);
    const table = (await kinfer(['test-run', 'list'])).stdout.split('\n');
    expect(table[0]).toMatch(/^ID\s+STATUS\s+TASK/);
    expect(table.find((l) => l.startsWith(first.id))).toMatch(/completed\s+image_classification\s+19\/19/);
    expect((await kinfer(['open', first.id])).stdout.trim()).toBe(`${stack.apiUrl.replace(/\/api\/v1$/, '')}/test-runs/${first.id}`);
    const watched = await kinfer(['watch', first.id]);
    expect([watched.code, watched.stdout]).toEqual([0, expect.stringContaining(`${first.id}  completed`)]);
    const shown = watched.stdout.split('\n');
    // The corrupt file of the dataset (one of 19), said beside the count.
    expect(shown).toContain(
      `${first.id}  completed  image_classification  19/19 images (1 could not be read)  accuracy=${stored.overall_metrics.accuracy.toFixed(4)}  good`,
    );
    expect(shown).toContain(`  ${'evaluated_images'.padEnd(28)} ${3 * COLOR_CLASSES.length}`);
    expect(shown).toContain(`  ${'accuracy'.padEnd(28)} ${stored.overall_metrics.accuracy.toFixed(4)}`);
    // The primary metric first, the rest by name (the stored object's keys come shortest first).
    const numeric = Object.keys(stored.overall_metrics).filter((k) => typeof stored.overall_metrics[k] === 'number');
    expect(shown.filter((l) => /^ {2}\S+ +[\d.]+$/.test(l)).map((l) => l.trim().split(/ +/)[0])).toEqual([
      'accuracy',
      ...numeric.filter((k) => k !== 'accuracy').sort(),
    ]);
    const refused = await kinfer(['test-run', 'create', '--checkpoint', `${stack.s3Prefix}/none.onnx`, '--dataset', dataset, '--task', 'image_classification']);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining(`checkpoint_path: no such object: ${stack.s3Prefix}/none.onnx`)]);
  }, 120_000);

  it("takes the server's root for KINFER_API_URL, names each refused field once, and says when it sent no token", async () => {
    const root = stack.apiUrl.replace(/\/api\/v1$/, '');
    const as = (env: Record<string, string | undefined>, args: string[]) => runCommand(KINFER, args, { env: { ...process.env, NODE_OPTIONS: '', ...env } });
    const viaRoot = await as({ KINFER_API_URL: `${root}/`, KINFER_TOKEN: stack.adminToken }, ['test-run', 'list', '-o', 'json']);
    expect([viaRoot.code, viaRoot.stderr]).toEqual([0, '']);
    expect(JSON.parse(viaRoot.stdout)).toEqual(JSON.parse((await http('GET', '/test-runs?limit=50')).text));
    // A path under the server that is not the API's.
    expect(await as({ KINFER_API_URL: `${root}/kinfer`, KINFER_TOKEN: stack.adminToken }, ['test-run', 'get', 'x'])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        "kinfer: error: HTTP 404: no such endpoint: GET /kinfer/test-runs/x (see /api/v1/openapi.json): is KINFER_API_URL the API's URL (such as http://127.0.0.1:8080/api/v1)?\n",
    });
    const args = ['test-run', 'create', '--checkpoint', 'file:///nowhere/m.onnx', '--dataset', dataset, '--task', 'image_classificatio'];
    expect(await kinfer(args)).toEqual({
      code: 1,
      stdout: '',
      stderr: `kinfer: error: HTTP 400: invalid test run
  task_type: Invalid option: expected one of "image_classification"|"object_detection"|"instance_segmentation"|"semantic_segmentation"|"pose_estimation"
`,
    });
    args[args.length - 1] = 'image_classification';
    expect(await kinfer(args)).toEqual({
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(
        /^kinfer: error: HTTP 400: invalid test run\n {2}checkpoint_path: not an allowed storage location: file:\/\/\/nowhere\/m\.onnx is outside KINFER_ALLOWED_URIS \(s3:\/\/, file:\/\/\/[^)]+\)\n$/,
      ),
    });
    // A refusal whose message says more than its field.
    expect(await kinfer(['export', 'test-run', first.id, '--format', 'coco'])).toEqual({
      code: 1,
      stdout: '',
      stderr: `kinfer: error: HTTP 400: format: COCO results hold objects; a job of task image_classification exports as csv or json
  format: coco needs an object task (object_detection, instance_segmentation, pose_estimation)
`,
    });
    // No KINFER_TOKEN, and no admin-token in KINFER_HOME.
    expect(await as({ KINFER_API_URL: stack.apiUrl, KINFER_TOKEN: undefined, KINFER_HOME: resolve('no-such-home') }, ['test-run', 'list'])).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'kinfer: error: HTTP 401: missing bearer token (an API token or, where configured, an OIDC token); the CLI had no token to send: set KINFER_TOKEN, or KINFER_HOME to the folder `kinfer serve` keeps its admin-token in\n',
    });
  });

  it('streams a run as server-sent events: status first, progress as it goes, done with the metrics last', async () => {
    const created = await stack.api('POST', '/test-runs', {
      checkpoint_path: swapped,
      dataset_path: dataset,
      task_type: 'image_classification',
      name: 'swapped',
    });
    expect(created.status).toBe(201);
    const seen = await events('test-runs', created.body.id);
    second = JSON.parse((await http('GET', `/test-runs/${created.body.id}`)).text);
    expect(seen[0]).toEqual({ event: 'status', data: expect.objectContaining({ id: created.body.id }) });
    expect(seen.at(-1)).toEqual({ event: 'done', data: second });
    expect(seen.filter((e) => e.event === 'done')).toHaveLength(1);
    // Progress never goes back, and the statuses follow the job's life.
    const processed = seen.filter((e) => e.event === 'progress').map((e) => e.data.processed_images as number);
    expect(processed).toEqual([...processed].sort((a, b) => a - b));
    const statuses = seen.filter((e) => e.event === 'status').map((e) => e.data.status as string);
    expect(['pending', 'running']).toEqual(expect.arrayContaining([...new Set(statuses)]));
    // A finished run's stream: its state and done at once.
    expect((await events('test-runs', created.body.id)).map((e) => e.event)).toEqual(['status', 'done']);
  }, 120_000);

  it('compares two runs of one dataset: metric and per-class deltas, and exactly the images they disagree on', async () => {
    const res = await http('GET', `/test-runs/compare?ids=${first.id},${second.id}`);
    expect(res.status).toBe(200);
    const cmp = JSON.parse(res.text);
    const accuracy = cmp.metrics.find((m: { name: string }) => m.name === 'accuracy');
    expect(accuracy.values).toEqual([first.overall_metrics.accuracy, second.overall_metrics.accuracy]);
    expect(accuracy.delta).toBeCloseTo(second.overall_metrics.accuracy - first.overall_metrics.accuracy, 12);
    const red = cmp.per_class.find((c: { class_name: string }) => c.class_name === 'red');
    const recall = (run: any) => run.per_class_metrics.find((c: { class_name: string }) => c.class_name === 'red').recall;
    expect(red.metrics.recall.values).toEqual([recall(first), recall(second)]);
    // Independently: the images whose predicted labels differ between the two runs' own pages.
    const page = async (id: string) =>
      new Map((JSON.parse((await http('GET', `/test-runs/${id}/images?limit=1000`)).text).images as any[]).map((i) => [i.image_path, i.predicted_label]));
    const [a, b] = [await page(first.id), await page(second.id)];
    const differing = [...a.keys()].filter((p) => a.get(p) !== b.get(p)).sort();
    expect(differing.length).toBe(6);
    expect(cmp.disagreements.total_count).toBe(differing.length);
    expect(cmp.disagreements.items.map((i: { image_path: string }) => i.image_path)).toEqual(differing);
    expect(cmp.disagreements.items[0].runs.map((r: { predicted_label: string }) => r.predicted_label)).toEqual([a.get(differing[0]!), b.get(differing[0]!)]);
    const refused = await http('GET', `/test-runs/compare?ids=${first.id}`);
    expect(refused.status).toBe(400);
    const twice = await http('GET', `/test-runs/compare?ids=${first.id},${first.id}`);
    expect([twice.status, JSON.parse(twice.text).fields]).toEqual([
      400,
      [{ field: 'ids', message: 'names a test run twice: name at least two different ones' }],
    ]);
    // A label filter with a typo: said so, naming the run's classes; a class with no such image: an empty page.
    const typo = await http('GET', `/test-runs/${first.id}/images?true_label=purple&predicted_label=red`);
    expect([typo.status, JSON.parse(typo.text).fields]).toEqual([
      400,
      [{ field: 'true_label', message: `"purple" is not a class of this test run (${first.class_names.join(', ')})` }],
    ]);
    const names: string[] = first.class_names;
    const matrix: number[][] = first.confusion_matrix;
    const [t, p] = names.flatMap((_, i) => names.map((__, j) => [i, j] as const)).find(([i, j]) => matrix[i]![j] === 0)!;
    const none = JSON.parse((await http('GET', `/test-runs/${first.id}/images?true_label=${names[t]}&predicted_label=${names[p]}`)).text);
    expect([none.filtered_count, none.images]).toEqual([0, []]);
  });

  it('serves artifacts through the API, and deletes a finished run with its rows and artifacts', async () => {
    const results = await http('GET', `/test-runs/${second.id}/artifacts/results.json`);
    expect([results.status, results.type]).toEqual([200, expect.stringMatching(/^application\/json/)]);
    const inStorage = (await stack.store.read(second.results_path)).toString('utf8');
    expect(results.text).toBe(inStorage);
    expect((await http('GET', `/test-runs/${second.id}/artifacts/..%2F..%2Fsecret`)).status).toBe(404);
    expect((await http('GET', `/test-runs/${second.id}/artifacts/nothing.json`)).status).toBe(404);

    const deleted = await kinfer(['test-run', 'delete', second.id]);
    expect([deleted.code, deleted.stdout.trim()]).toEqual([0, `test run ${second.id} deleted`]);
    expect((await http('GET', `/test-runs/${second.id}`)).status).toBe(404);
    await expect(stack.store.read(second.results_path)).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND' });
    const rows = await stack.db.query('SELECT count(*)::int AS n FROM test_image_results WHERE test_run_id = $1', [second.id]);
    expect(rows.rows[0].n).toBe(0);
    // A running job is not deleted.
    const running = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: good,
      task_type: 'image_classification',
      inference_type: 'dataset',
      input_config: { dataset_path: dataset },
    });
    const early = await http('DELETE', `/inference-jobs/${running.body.id}`);
    const state = JSON.parse((await http('GET', `/inference-jobs/${running.body.id}`)).text);
    // Refused while it runs (409, the job untouched); a job that had already finished is deleted (204).
    expect([early.status, state.status ?? 'deleted']).toEqual(
      early.status === 409 ? [409, expect.stringMatching(/pending|running|completed/)] : [204, 'deleted'],
    );
    if (early.status === 409) expect(outcome(await stack.waitFor('inference-jobs', running.body.id))).toEqual({ status: 'completed', error_message: null });
  }, 120_000);

  it('describes itself: OpenAPI 3.1 at /api/v1/openapi.json, a docs page, without a token', async () => {
    const doc = await fetch(`${stack.apiUrl}/openapi.json`);
    expect(doc.status).toBe(200);
    const body = (await doc.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(body.openapi).toBe('3.1.0');
    expect(Object.keys(body.paths)).toEqual(expect.arrayContaining(['/test-runs', '/test-runs/{id}/events', '/test-runs/compare']));
    const page = await fetch(`${stack.apiUrl}/docs`);
    expect(await page.text()).toMatch(/<table>[\s\S]*\/api\/v1\/test-runs\/\{id\}\/events/);
  });
});

describe('the per-job image limit (KINFER_MAX_IMAGES_PER_JOB)', () => {
  let limited: TestStack;
  afterAll(async () => {
    await limited?.stop();
  });

  it('fails a job over the limit before it reads an image, with the reason; a job within it runs', async () => {
    limited = await startTestStack({ KINFER_MAX_IMAGES_PER_JOB: '5' });
    const data = `${limited.s3Prefix}/limit/data`;
    const model = `${limited.s3Prefix}/limit/model.onnx`;
    await upload(limited.store, data, await buildColorDataset({ perClass: 1 }));
    await limited.store.write(model, Buffer.from(buildColorClassifier().model));
    const big = await limited.api('POST', '/test-runs', { checkpoint_path: model, dataset_path: data, task_type: 'image_classification' });
    const failed = await limited.waitFor('test-runs', big.body.id);
    expect([failed.status, failed.error_code, failed.error_message, failed.processed_images]).toEqual([
      'failed',
      'TOO_MANY_IMAGES',
      `TooManyImagesError: the job has ${COLOR_CLASSES.length} images; one job may have at most 5 here (KINFER_MAX_IMAGES_PER_JOB)`,
      0,
    ]);
    const images = (await buildColorDataset({ perClass: 1 })).slice(0, 3).map((f) => `${data}/${f.path}`);
    const small = await limited.api('POST', '/inference-jobs', {
      checkpoint_path: model,
      task_type: 'image_classification',
      inference_type: 'batch',
      input_config: { image_paths: images },
    });
    expect(outcome(await limited.waitFor('inference-jobs', small.body.id))).toEqual({ status: 'completed', error_message: null });
  }, 120_000);
});
