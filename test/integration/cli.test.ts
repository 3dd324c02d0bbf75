// `kinfer run`, the local CLI, as a user runs it: a real process, real files, exit codes; and for
// every task, its prediction equals the per-image result of an inference job on the same image
// and model, run through the real stack (the CLI goes through the same admission and runner).
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset, writeFiles, type DatasetFile } from '../../src/samples/color-dataset.ts';
import { GraphBuilder } from '../../src/samples/onnx-writer.ts';
import { buildShapeDataset, type ShapeTask } from '../../src/samples/shape-datasets.ts';
import { buildShapeModel } from '../../src/samples/shape-models.ts';
import { writeSamples } from '../../src/samples/write-samples.ts';
import { freePort } from '../support/ports.ts';
import { runCommand, startCommand } from '../support/processes.ts';
import { outcome, startTestStack, type TestStack } from '../support/test-stack.ts';

const KINFER = resolve('bin/kinfer');
let dir: string;
let images: DatasetFile[];
/** The generated file of a class (the generator picks PNG or JPEG). */
const fileOf = (prefix: string) => `images/${images.find((f) => f.path.startsWith(prefix))!.path}`;

/** About 3,000 images (seconds of work for `kinfer run`), generated once. */
let many: ReturnType<typeof writeSamples> | undefined;
const manyImages = () => (many ??= writeSamples(join(dir, 'many'), { perClass: 500 }));

const kinfer = (args: string[]) => runCommand(KINFER, args, { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' } });

beforeAll(async () => {
  dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'cli-'));
  writeFileSync(join(dir, 'model.onnx'), buildColorClassifier().model);
  const sidecar = buildColorClassifier({ metadataIn: 'sidecar' });
  writeFileSync(join(dir, 'plain.onnx'), sidecar.model);
  writeFileSync(join(dir, 'plain.onnx.json'), JSON.stringify(sidecar.sidecar));
  // A classifier that says nothing about itself but its names and input size.
  const g = new GraphBuilder();
  const x = g.input('images', [1, 3, 8, 8]);
  g.node('MatMul', [g.node('Flatten', [g.node('GlobalAveragePool', [x])]), g.weight('w', [3, 2], new Float32Array(6).fill(0.5))], {}, 'scores');
  g.output('scores', [1, 2]);
  writeFileSync(join(dir, 'taskless.onnx'), g.toModel({ metadata: { names: "{0: 'a', 1: 'b'}", imgsz: '8' } }));
  images = await buildColorDataset({ perClass: 2, corrupt: ['red'] });
  await writeFiles(join(dir, 'images'), images);
  mkdirSync(join(dir, 'empty'));
  writeFileSync(join(dir, 'empty', 'notes.txt'), 'no images here');
});

describe('kinfer', () => {
  it("--version prints package.json's version and exits 0", async () => {
    const { version } = JSON.parse(readFileSync(resolve('package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) expect(await kinfer([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it("says what is wrong with the API's URL: nothing listens there, not a URL, a page that is not the API", async () => {
    const asClient = (url: string, args = ['test-run', 'list']) =>
      runCommand(KINFER, args, { cwd: dir, env: { ...process.env, NODE_OPTIONS: '', KINFER_API_URL: url, KINFER_TOKEN: 'kinfer_x' } });
    const port = await freePort();
    const unreachable = `kinfer: error: cannot reach the kinfer API at http://127.0.0.1:${port}/api/v1 (connect ECONNREFUSED 127.0.0.1:${port}): is it running there? (\`kinfer serve\` starts one; KINFER_API_URL says where)\n`;
    // The server's root means its API, /api/v1.
    for (const args of [
      ['test-run', 'list'],
      ['watch', 'some-id'],
    ])
      expect(await asClient(`http://127.0.0.1:${port}`, args)).toEqual({ code: 1, stdout: '', stderr: unreachable });
    expect(await asClient('127.0.0.1:8080')).toEqual({
      code: 2,
      stdout: '',
      stderr: `kinfer: error: the API's URL is not an http(s) URL: "127.0.0.1:8080" (KINFER_API_URL or --api, such as http://127.0.0.1:8080/api/v1)\n`,
    });
    // A proxy's sign-in page, answered 200 to any path.
    const proxy = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Sign in</title>'));
    await new Promise<void>((ready) => proxy.listen(0, '127.0.0.1', ready));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/api/v1`;
      expect(await asClient(url)).toEqual({
        code: 1,
        stdout: '',
        stderr: `kinfer: error: ${url}/test-runs answered text/html, not the kinfer API's JSON: is KINFER_API_URL the API's URL (such as http://127.0.0.1:8080/api/v1)?\n`,
      });
    } finally {
      proxy.close();
    }
  });
});

describe('kinfer run, classification', () => {
  it('prints the class and per-class confidences for one image', async () => {
    const image = fileOf('test/blue/blue_0000');
    const res = await kinfer(['run', '--checkpoint', 'model.onnx', '--image', image]);
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toBe(`${image}: blue (${lines[0]!.match(/\((\d+\.\d)%\)$/)![1]}%)`);
    expect(lines.slice(1)).toHaveLength(5);
    expect(lines[1]).toMatch(/^\s+blue\s+\d+\.\d\d%$/);
  });

  it('reads class names from a sidecar JSON when the model has no metadata', async () => {
    const res = await kinfer(['run', '--checkpoint', 'plain.onnx', '--image', fileOf('test/green/green_0001'), '--top-k', '2']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/: green \(/);
    expect(res.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('writes batch_results.json for a folder, lists the corrupt file and says so in its exit code', async () => {
    const res = await kinfer(['run', '--checkpoint', 'model.onnx', '--input-dir', 'images']);
    expect(res.code).toBe(1);
    const out = JSON.parse(readFileSync(join(dir, 'batch_results.json'), 'utf8'));
    expect(out).toMatchObject({ task_type: 'image_classification', total_images: 13, failed_images: 1 });
    const byPath = new Map(out.results.map((r: { image_path: string }) => [r.image_path, r]));
    expect(byPath.get(fileOf('test/cyan/cyan_0001').replace(/^images\//, ''))).toMatchObject({ predicted_label: 'cyan' });
    expect(out.results.find((r: { error: string | null }) => r.error)).toMatchObject({ image_path: 'test/red/corrupt_0.jpg' });
    const lines = res.stdout.trim().split('\n');
    // One line per image, in listing order, then the summary.
    expect(lines).toHaveLength(14);
    expect(lines.slice(0, 13).map((l) => l.split(':')[0])).toEqual(out.results.map((r: { image_path: string }) => r.image_path));
    expect(lines.find((l) => l.startsWith('test/red/corrupt_0.jpg'))).toMatch(/: ERROR cannot decode image/);
    expect(lines[13]).toMatch(/^13 images, 1 failed, [\d.]+ s; results written to .*batch_results\.json$/);
  });

  it.each([
    [['run', '--checkpoint', 'missing.onnx', '--image', 'model.onnx'], 2, /checkpoint not found: missing\.onnx/],
    [['run', '--checkpoint', 'model.onnx', '--image', 'nope.jpg'], 2, /image not found: nope\.jpg/],
    [['run', '--checkpoint', 'model.onnx', '--input-dir', 'nowhere'], 2, /folder not found: nowhere/],
    [['run', '--checkpoint', 'model.onnx', '--input-dir', 'empty'], 2, /no images found under file:\/\/.*\/empty/],
    [['run', '--checkpoint', 'model.onnx'], 2, /exactly one of --image or --input-dir/],
    [
      ['run', '--checkpoint', 'model.onnx', '--image', '@red', '--task', 'object_detection'],
      2,
      /--task: the model's task is image_classification but the job asks for object_detection/,
    ],
    [['run', '--checkpoint', 'taskless.onnx', '--image', '@red'], 2, /the model does not say which task it does .*give --task/],
    [
      ['run', '--checkpoint', 'model.onnx', '--image', '@red', '--xai', 'integrated_gradients'],
      2,
      /--xai must be one of gradcam, hirescam, gradcampp, scorecam, eigencam, lime, shap, attention/,
    ],
    [['run', '--checkpoint', 'model.onnx', '--image', '@red', '--xai', 'attention'], 2, /--xai: attention rollout needs a vision transformer/],
    [['run', '--checkpoint', 'images/test/red/corrupt_0.jpg', '--image', 'model.onnx'], 2, /--checkpoint: not an ONNX model/],
    [['run', '--checkpoint', 'images', '--image', '@red'], 2, /^kinfer: error: --checkpoint: images is a folder, not an ONNX model$/],
    [['run', '--checkpoint', 'model.onnx', '--image', 'images'], 2, /^kinfer: error: --image: images is a folder \(--input-dir runs every image under it\)$/],
    [
      ['run', '--checkpoint', 'model.onnx', '--input-dir', 'model.onnx'],
      2,
      /^kinfer: error: --input-dir: model.onnx is a file, not a folder \(--image runs one image\)$/,
    ],
    [
      ['run', '--checkpoint', 'model.onnx', '--input-dir', 'images', '--output-dir', 'model.onnx'],
      2,
      /^kinfer: error: --output-dir: model.onnx is a file, not a folder$/,
    ],
    [
      ['run', '--checkpoint', 'model.onnx', '--input-dir', 'images', '--output-dir', 'model.onnx/out'],
      2,
      /^kinfer: error: cannot make the output folder .*\/model.onnx\/out: ENOTDIR/,
    ],
    // Usage errors (commander's) are refusals too, for every command.
    [['run', '--image', 'x.jpg'], 2, /required option '--checkpoint <path>' not specified/],
    [['run', '--checkpoint', 'model.onnx', '--image', 'x.jpg', '--top-k', 'many'], 2, /--top-k must be a positive integer/],
    [['run', '--checkpoint', 'model.onnx', '--image', 'x.jpg', '--conf', '2'], 2, /--conf must be a number from 0 to 1/],
    [['run', '--checkpoint', 'model.onnx', '--image', 'x.jpg', '--bogus'], 2, /^kinfer: unknown option '--bogus'$/],
    [['bogus'], 2, /^kinfer: unknown command 'bogus'$/],
    [['watch'], 2, /^kinfer: missing required argument 'id'$/],
    [['export', 'nope', 'x'], 2, /^kinfer: error: kind must be test-run or inference-job, not "nope"$/],
    [['test-run', 'list', '--limit', '0'], 2, /--limit must be a positive integer/],
  ])('refuses with a one-line error and its exit code: %j', async (args, code, message) => {
    // @red: an image of the dataset (generated in beforeAll).
    const res = await kinfer(args.map((a) => (a === '@red' ? fileOf('test/red/red_0000') : a)));
    expect([res.code, res.stderr.trimEnd()]).toEqual([code, expect.stringMatching(message)]);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stdout).toBe('');
  });

  it("explains one image: the class, every class, and the overlay, which decodes at the image's size", async () => {
    const image = fileOf('test/blue/blue_0000');
    const res = await kinfer(['run', '--checkpoint', 'model.onnx', '--image', image, '--xai', 'gradcam', '--output-dir', 'explained']);
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${image}: blue \\(`));
    // Every class's confidence (6 colours), then the overlay's path.
    expect(lines.slice(1, 7).every((l) => /^\s+\w+\s+\d+\.\d\d%$/.test(l))).toBe(true);
    const overlay = lines[7]!.match(/^explanation \(gradcam\): (.+\.jpg)$/)![1]!;
    const { default: sharp } = await import('sharp');
    const [pic, original] = await Promise.all([sharp(join(dir, overlay)).metadata(), sharp(join(dir, image)).metadata()]);
    expect([pic.width, pic.height]).toEqual([original.width, original.height]);
    // The map beside it, float32 at the network's input size.
    const npy = readFileSync(join(dir, overlay.replace(/\.jpg$/, '.npy')));
    expect(npy.subarray(1, 6).toString()).toBe('NUMPY');
    expect(npy.toString('latin1', 10, 80)).toMatch(/'descr': '<f4'.*'shape': \(32, 32\)/);
  });

  it('explains a folder: batch_results.json has every class score and the overlay of each image', async () => {
    const res = await kinfer(['run', '--checkpoint', 'model.onnx', '--input-dir', 'images', '--xai', 'lime', '--output-dir', 'explained-all']);
    expect(res.code).toBe(1); // the corrupt file
    const out = JSON.parse(readFileSync(join(dir, 'explained-all', 'batch_results.json'), 'utf8'));
    const ok = out.results.filter((r: any) => !r.error);
    expect(ok.length).toBe(12);
    for (const r of ok) {
      expect(Object.keys(r.scores).sort()).toEqual(['blue', 'cyan', 'green', 'magenta', 'red', 'yellow']);
      expect(r.overlay_path).toMatch(new RegExp(`/explained-all/xai/${r.image_path.replace(/\.\w+$/, '')}_lime\\.jpg$`));
      expect(r.xai.lime.importance_scores.length).toBe(r.xai.lime.superpixels);
    }
    // The corrupt image: its error, no explanation.
    expect(out.results.find((r: any) => r.error)).toMatchObject({ xai: null });
  });

  it('stops a folder run on Ctrl-C: exit 130, says how far it got, writes no batch_results.json, leaves no scratch folder', async () => {
    const samples = await manyImages();
    const cwd = mkdtempSync(join(dir, 'interrupted-'));
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    const run = startCommand(KINFER, ['run', '--checkpoint', samples.checkpoint, '--input-dir', samples.datasetRoot], {
      cwd,
      env: { ...process.env, NODE_OPTIONS: '', TMPDIR: tmp },
    });
    // While it works: 20 images printed, and a scratch folder in TMPDIR.
    await new Promise<void>((ready) => run.child.stdout.on('data', () => run.stdout().split('\n').length > 20 && readdirSync(tmp).length > 0 && ready()));
    run.child.kill('SIGINT');
    expect(await run.closed).toBe(130);
    const printed = run.stdout().trim().split('\n').length;
    const said = /^kinfer: error: interrupted \(SIGINT\) after (\d+) images; batch_results.json not written\n$/.exec(run.stderr());
    expect(said).not.toBeNull();
    // Every image it counts was printed, and it stopped well before the end.
    expect(Number(said![1])).toBe(printed);
    expect(printed).toBeLessThan(3000);
    expect({ cwd: readdirSync(cwd), tmp: readdirSync(tmp) }).toEqual({ cwd: [], tmp: [] });
  }, 60_000);

  it('stops when its reader leaves (kinfer run ... | head): exit 0, and no scratch folder left', async () => {
    const samples = await manyImages();
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    const run = startCommand(KINFER, ['run', '--checkpoint', samples.checkpoint, '--input-dir', samples.datasetRoot], {
      cwd: mkdtempSync(join(dir, 'piped-')),
      env: { ...process.env, NODE_OPTIONS: '', TMPDIR: tmp },
    });
    // As `head -1` does: one line read, then the pipe closed while the run works on.
    await new Promise<void>((ready) => run.child.stdout.once('data', () => ready()));
    expect(readdirSync(tmp)).toHaveLength(1);
    run.child.stdout.destroy();
    expect(await run.closed).toBe(0);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  it('runs a model without task metadata when --task says it', async () => {
    const res = await kinfer([
      'run',
      '--checkpoint',
      'taskless.onnx',
      '--image',
      fileOf('test/red/red_0000'),
      '--task',
      'image_classification',
      '--top-k',
      '1',
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/: (a|b) \(/);
  });
});

describe('kinfer run equals an inference job, for every task', () => {
  let stack: TestStack;
  const TASKS: Array<[ShapeTask | 'classify', string]> = [
    ['classify', 'image_classification'],
    ['detect', 'object_detection'],
    ['segment', 'instance_segmentation'],
    ['pose', 'pose_estimation'],
    ['semantic', 'semantic_segmentation'],
  ];

  beforeAll(async () => {
    stack = await startTestStack();
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('kinfer token create | list | revoke, authenticated by the admin token of KINFER_HOME; a revoked token is refused', async () => {
    const api = ['--api', stack.apiUrl];
    const as = (env: Record<string, string>) => (args: string[]) =>
      runCommand(KINFER, args, { cwd: dir, env: { ...process.env, NODE_OPTIONS: '', KINFER_TOKEN: '', ...env } });
    const admin = as({ KINFER_HOME: stack.home });
    const created = await admin(['token', 'create', '--name', 'ci', '--role', 'viewer', '--owner', 'robot', ...api]);
    expect(created.code).toBe(0);
    const [line, secret] = created.stdout.trim().split('\n');
    expect(line).toMatch(/^token [0-9a-f-]{36} for robot \(viewer\), expires /);
    expect(secret).toMatch(/^kinfer_[\w-]{43}$/);
    const id = /^token ([0-9a-f-]{36})/.exec(line!)![1]!;
    const robot = as({ KINFER_HOME: '/nonexistent', KINFER_TOKEN: secret! });
    expect((await robot(['token', 'list', ...api])).stdout).toMatch(new RegExp(`${id}  robot +viewer  active`));
    expect((await admin(['token', 'revoke', id, ...api])).stdout.trim()).toBe(`token ${id} revoked`);
    const refused = await robot(['token', 'list', ...api]);
    expect([refused.code, refused.stderr.trim()]).toEqual([1, 'kinfer: error: HTTP 401: API token revoked']);
    const anonymous = await as({ KINFER_HOME: '/nonexistent' })(['token', 'list', ...api]);
    expect(anonymous.stderr).toMatch(/HTTP 401: missing bearer token/);
  });

  /** What both report about the image (timings and where artifacts went differ by nature); absent and null alike. */
  const PREDICTION = [
    'image_index',
    'image_path',
    'image_id',
    'predicted_class_id',
    'predicted_label',
    'confidence',
    'predictions',
    'detections',
    'image_metrics',
  ] as const;
  const prediction = (r: Record<string, unknown>) => Object.fromEntries(PREDICTION.map((k) => [k, r[k] ?? null]));

  it.each(TASKS)('%s: the same per-image result, and an exit code of 0', async (kind, taskType) => {
    const root = `${stack.s3Prefix}/cli-${kind}`;
    let image: { path: string; bytes: Uint8Array };
    if (kind === 'classify') {
      await stack.store.write(`${root}/model.onnx`, Buffer.from(buildColorClassifier().model));
      image = images.find((f) => f.path.startsWith('test/magenta/'))!;
    } else {
      await stack.store.write(`${root}/model.onnx`, Buffer.from(buildShapeModel(kind)));
      const data = await buildShapeDataset(kind);
      // The image with the most objects drawn.
      const best = data.images.filter((i) => !i.corrupt).sort((a, b) => b.drawn.length - a.drawn.length)[0]!;
      image = data.files.find((f) => f.path === `val/${best.file}`)!;
    }
    const uri = `${root}/${image.path.split('/').at(-1)}`;
    await stack.store.write(uri, Buffer.from(image.bytes));
    const created = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: `${root}/model.onnx`,
      task_type: taskType,
      inference_type: 'single',
      input_config: { image_path: uri },
    });
    expect(created.status).toBe(201);
    const job = await stack.waitFor('inference-jobs', created.body.id);
    expect(outcome(job)).toEqual({ status: 'completed', error_message: null });
    const [fromJob] = (await stack.api('GET', `/inference-jobs/${job.id}/results`)).body.results;

    const cli = await kinfer(['run', '--checkpoint', `${root}/model.onnx`, '--image', uri, '--task', taskType, '--json']);
    expect([cli.code, cli.stderr]).toEqual([0, '']);
    const fromCli = JSON.parse(cli.stdout);
    expect([fromJob.error_message, fromCli.error]).toEqual([null, null]);
    expect(prediction(fromCli)).toEqual(prediction(fromJob));
    if (kind !== 'classify' && kind !== 'semantic') expect(fromCli.detections.length).toBeGreaterThan(0);

    // The predictor service: the same result online, by URL and by upload.
    const predict = async (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }, query = '') => {
      const res = await fetch(`${stack.predictorUrl}/predict${query}`, { method: 'POST', headers: { ...stack.bearer, ...headers }, body: body as string });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const online = await predict(JSON.stringify({ checkpoint_path: `${root}/model.onnx`, task_type: taskType, image_url: uri }));
    expect(online.status).toBe(200);
    expect(prediction(online.body)).toEqual(prediction(fromJob));
    expect(online.body).toMatchObject({ model: `${root}/model.onnx`, cached: false, inference_time_ms: expect.any(Number), preprocess_ms: expect.any(Number) });
    if (kind === 'semantic') expect(Buffer.from(online.body.mask_png_base64, 'base64').subarray(1, 4).toString()).toBe('PNG');
    // Asked again: the same answer from the result cache.
    const again = await predict(JSON.stringify({ checkpoint_path: `${root}/model.onnx`, task_type: taskType, image_url: uri }));
    expect([again.body.cached, prediction(again.body)]).toEqual([true, prediction(fromJob)]);
    const uploaded = await predict(
      Buffer.from(image.bytes) as unknown as string,
      { 'content-type': 'image/png' },
      `?checkpoint_path=${encodeURIComponent(`${root}/model.onnx`)}&task_type=${taskType}`,
    );
    expect(uploaded.status).toBe(200);
    expect({ ...prediction(uploaded.body), image_path: null }).toEqual({ ...prediction(fromJob), image_path: null });
  });

  it('the predictor refuses what it cannot answer with a 4xx naming the field', async () => {
    const root = `${stack.s3Prefix}/cli-classify`;
    const call = async (body: Record<string, unknown>, auth = true) => {
      const res = await fetch(`${stack.predictorUrl}/predict`, {
        method: 'POST',
        headers: { ...(auth ? stack.bearer : {}), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const replies = [
      await call({ checkpoint_path: `${root}/model.onnx`, task_type: 'image_classification', image_base64: Buffer.from('not an image').toString('base64') }),
      await call({ checkpoint_path: `${root}/model.onnx`, task_type: 'image_classification' }),
      await call({ model: 'nothing-registered', image_url: `${root}/x.png` }),
      await call({ checkpoint_path: '/etc/passwd', task_type: 'image_classification', image_url: `${root}/x.png` }),
      await call({ checkpoint_path: `${root}/model.onnx`, task_type: 'image_classification', image_url: `${root}/none.png` }),
      await call({ checkpoint_path: `${root}/model.onnx`, task_type: 'image_classification', image_url: `${root}/x.png` }, false),
    ];
    expect(replies.map((r) => [r.status, r.body.error, r.body.fields?.[0]?.field])).toEqual([
      [400, 'validation_error', 'image_base64'],
      [400, 'validation_error', 'image'],
      // An unknown model is not found, as KServe and Triton answer it.
      [404, 'not_found', 'model'],
      [400, 'validation_error', 'checkpoint_path'],
      [400, 'validation_error', 'image_url'],
      [401, 'unauthorized', undefined],
    ]);
  });

  it('writes the visualizations of an object task to --output-dir', async () => {
    const data = await buildShapeDataset('segment');
    const folder = join(dir, 'segment-images');
    await writeFiles(
      folder,
      data.files.filter((f) => /\.(png|jpg)$/.test(f.path)).map((f) => ({ ...f, path: f.path.split('/').at(-1)! })),
    );
    writeFileSync(join(dir, 'segment.onnx'), buildShapeModel('segment'));
    const res = await kinfer(['run', '--checkpoint', 'segment.onnx', '--input-dir', 'segment-images', '--output-dir', 'seg-out']);
    const out = JSON.parse(readFileSync(join(dir, 'seg-out', 'batch_results.json'), 'utf8'));
    expect(res.code).toBe(out.failed_images > 0 ? 1 : 0);
    const pictures = readdirSync(join(dir, 'seg-out', 'visualizations'));
    expect(pictures).toHaveLength(out.results.filter((r: { error: string | null }) => r.error === null).length);
    expect(res.stdout).toMatch(/\d+ objects?: /);
    // What the README lists for --output-dir, and not the job's committed parts (a file an image).
    expect(readdirSync(join(dir, 'seg-out')).sort()).toEqual(['batch_results.json', 'images.jsonl', 'results.json', 'visualizations']);
  });
});
