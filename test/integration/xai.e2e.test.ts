// Explanations end to end (REST -> runner -> callbacks -> Postgres + S3 -> REST) on the real stack:
// a test run with Grad-CAM on every image (overlays decode at the original's size, the .npy holds
// the map, the xai objects of the REST rows, of images.jsonl and of xai_results are one and the
// same, a corrupt image keeps its error and gets no explanation), the default policy of a test run
// (only what it got wrong), an inference job with LIME, the natural-language explanation from a
// FAKE OpenAI-compatible endpoint (and a failing one: a warning, not a failure), EigenCAM on a
// detector (refused without a target layer it can find, run with one), and a cancel while the
// runner explains.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { readOnnxHeader } from '../../src/contract/index.ts';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset, type DatasetFile } from '../../src/samples/color-dataset.ts';
import { buildYoloLike } from '../../src/samples/yolo-like.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

/** FAKE: an OpenAI-compatible chat endpoint (no language model can run here). Says what it was told. */
function fakeChat(mode: { fail: boolean }): Promise<{ server: Server; url: string; requests: any[] }> {
  const requests: any[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ url: req.url, auth: req.headers.authorization, body: JSON.parse(body) });
      if (mode.fail) {
        res.writeHead(503).end('{"error":"overloaded"}');
        return;
      }
      const facts = JSON.parse(JSON.parse(body).messages[1].content);
      const content = JSON.stringify({
        summary: `The model sees ${facts.predicted} (FAKE).`,
        key_factors: [`${facts.method} highlights ${facts.top_regions?.length ?? 0} regions`],
        confidence_reasoning: `confidence ${facts.confidence}`,
        alternative_considerations: facts.runner_up ? `runner-up ${facts.runner_up.label}` : 'none',
      });
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ model: 'fake-llm-1', choices: [{ message: { role: 'assistant', content } }] }));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, requests })),
  );
}

let stack: TestStack;
let chat: Awaited<ReturnType<typeof fakeChat>>;
const chatMode = { fail: false };
let root: string;
let files: DatasetFile[];

beforeAll(async () => {
  chat = await fakeChat(chatMode);
  stack = await startTestStack({
    KINFER_XAI_LLM_BASE_URL: chat.url,
    KINFER_XAI_LLM_MODEL: 'fake-llm-1',
    KINFER_XAI_LLM_API_KEY: 'sk-fake-key',
    KINFER_RUNNER_BATCH_SIZE: '4',
  });
  root = `${stack.s3Prefix}/xai`;
  files = await buildColorDataset({ perClass: 3, mislabeled: [['red', 'blue']], corrupt: ['green'] });
  await upload(stack.store, `${root}/data`, files);
  await stack.store.write(`${root}/colors.onnx`, Buffer.from(buildColorClassifier().model));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  chat?.server.close();
});

async function testRun(body: Record<string, unknown>): Promise<any> {
  const created = await stack.api('POST', '/test-runs', {
    checkpoint_path: `${root}/colors.onnx`,
    dataset_path: `${root}/data`,
    dataset_split: 'test',
    task_type: 'image_classification',
    ...body,
  });
  expect(created.status).toBe(201);
  return stack.waitFor('test-runs', created.body.id, undefined, 120_000);
}

describe('a test run with Grad-CAM on every image', () => {
  let run: any;
  let images: any[];

  beforeAll(async () => {
    run = await testRun({ enable_xai: true, xai_method: 'gradcam', xai_config: { images: 'all' } });
    images = (await stack.api('GET', `/test-runs/${run.id}/images?limit=1000`)).body.images;
  }, 150_000);

  it('completes, keeps its method and config, and reports how faithful the maps are', () => {
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    expect(run).toMatchObject({ enable_xai: true, xai_method: 'gradcam', xai_config: { images: 'all' } });
    expect(run.overall_metrics['xai/explained_images']).toBe(images.filter((r) => !r.error_message).length);
    expect(typeof run.overall_metrics['xai/mean_confidence_change']).toBe('number');
  });

  it('explains every readable image: an overlay at the original size, the map in a .npy', async () => {
    const readable = images.filter((r) => !r.error_message);
    expect(readable.length).toBe(files.filter((f) => f.drawn).length);
    for (const r of readable) {
      expect(r.xai).toMatchObject({ method: 'gradcam', target_class_id: r.predicted_class_id, target_label: r.predicted_label });
      const stem = r.image_path.replace(/\.\w+$/, '');
      expect(r.xai.heatmap_path).toBe(`${run.results_path.replace(/results\.json$/, '')}xai/${stem}_gradcam.jpg`);
      const [overlay, original] = await Promise.all([
        sharp(await stack.store.read(r.xai.heatmap_path)).metadata(),
        sharp(await stack.store.read(`${root}/data/test/${r.image_path}`)).metadata(),
      ]);
      // The image as displayed (its EXIF orientation applied, as for the prediction).
      expect([overlay.format, overlay.width, overlay.height]).toEqual(['jpeg', original.autoOrient.width, original.autoOrient.height]);
      const npy = await stack.store.read(r.xai.map_path);
      const header = npy.toString('latin1', 10, 10 + npy.readUInt16LE(8));
      expect(header).toMatch(/'descr': '<f4', 'fortran_order': False, 'shape': \(32, 32\)/);
      const map = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + npy.readUInt16LE(8), npy.byteOffset + npy.length));
      expect(Math.max(...map)).toBeCloseTo(1, 4);
      expect(Math.min(...map)).toBeGreaterThanOrEqual(0);
      expect(r.xai.gradcam.activations_shape).toEqual([32, 32]);
      expect(r.xai.faithfulness.confidence_change).toBeGreaterThanOrEqual(-1);
    }
  });

  it('keeps the corrupt image as an error entry, with no explanation', () => {
    const corrupt = images.find((r) => r.error_message)!;
    expect(corrupt).toMatchObject({ image_path: 'green/corrupt_0.jpg', xai: null });
  });

  it('has the same xai objects in the REST rows, in xai_results and in images.jsonl', async () => {
    const rows = (await stack.db.query('SELECT image_index, method, xai FROM xai_results WHERE job_id = $1 ORDER BY image_index', [run.id])).rows;
    const explained = images.filter((r) => r.xai);
    expect(rows.map((r: any) => r.image_index)).toEqual(explained.map((r) => r.image_index));
    rows.forEach((row: any, i: number) => {
      expect(row.method).toBe('gradcam');
      expect(row.xai).toEqual(explained[i].xai);
    });
    const jsonl = (await stack.store.read(run.results_path.replace(/results\.json$/, 'images.jsonl')))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const line of jsonl) expect(line.xai ?? null).toEqual(images.find((r) => r.image_index === line.image_index).xai);
    const exported = JSON.parse(await (await fetch(`${stack.apiUrl}/test-runs/${run.id}/export?format=json`, { headers: stack.bearer })).text());
    const items = Array.isArray(exported) ? exported : (exported.images ?? exported.results);
    expect(items.filter((r: any) => r.xai).length).toBe(explained.length);
  });

  it('explains, with the FAKE endpoint, in words built from the facts; the key never leaves the Secret/env path', () => {
    const r = images.find((x) => x.xai)!;
    expect(r.xai.explanation).toMatchObject({ summary: `The model sees ${r.predicted_label} (FAKE).`, model: 'fake-llm-1' });
    expect(chat.requests[0]).toMatchObject({ url: '/v1/chat/completions', auth: 'Bearer sk-fake-key' });
    expect(chat.requests[0].body.model).toBe('fake-llm-1');
    expect(JSON.stringify(run)).not.toContain('sk-fake-key');
  });
});

describe('defaults and other methods', () => {
  it('a test run explains only the images it got wrong by default', async () => {
    const run = await testRun({ enable_xai: true });
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    const images = (await stack.api('GET', `/test-runs/${run.id}/images?limit=1000`)).body.images;
    const wrong = images.filter((r: any) => r.is_correct === false);
    expect(wrong.length).toBeGreaterThan(0);
    expect(images.filter((r: any) => r.xai).map((r: any) => r.image_index)).toEqual(wrong.map((r: any) => r.image_index));
    expect(wrong[0].xai.method).toBe('gradcam');
  }, 150_000);

  it('an inference job explains with LIME; a failing language endpoint is a warning, not a failure', async () => {
    chatMode.fail = true;
    try {
      const created = await stack.api('POST', '/inference-jobs', {
        checkpoint_path: `${root}/colors.onnx`,
        task_type: 'image_classification',
        inference_type: 'dataset',
        input_config: { dataset_path: `${root}/data/test/red` },
        enable_xai: true,
        xai_method: 'lime',
        xai_config: { num_samples: 200, images: 'first:2' },
      });
      expect(created.status).toBe(201);
      const job = await stack.waitFor('inference-jobs', created.body.id, undefined, 120_000);
      expect(outcome(job)).toEqual({ status: 'completed', error_message: null });
      const results = (await stack.api('GET', `/inference-jobs/${job.id}/results?limit=1000`)).body.results;
      const explained = results.filter((r: any) => r.xai);
      expect(explained).toHaveLength(2);
      expect(explained.map((r: any) => r.image_index)).toEqual([0, 1]);
      for (const r of explained) {
        expect(r.xai.lime).toMatchObject({ num_samples: 200 });
        expect(r.xai.lime.importance_scores).toHaveLength(r.xai.lime.superpixels);
        expect(r.xai.explanation).toBeUndefined();
        expect(r.xai.warnings).toEqual([expect.stringMatching(/natural-language explanation unavailable: the endpoint answered HTTP 503/)]);
      }
    } finally {
      chatMode.fail = false;
    }
  }, 150_000);

  it('EigenCAM on a detector: refused when the graph has no pooling to pick a layer, run with one named', async () => {
    const model = buildYoloLike({ imgsz: 128, numClasses: 3 }).model;
    await stack.store.write(`${root}/yolo.onnx`, Buffer.from(model));
    const request = {
      checkpoint_path: `${root}/yolo.onnx`,
      task_type: 'object_detection',
      inference_type: 'single',
      input_config: { image_path: `${root}/data/test/${files[0]!.path.slice('test/'.length)}` },
      enable_xai: true,
    };
    const refused = await stack.api('POST', '/inference-jobs', request);
    expect(refused.status).toBe(400);
    expect(refused.body.fields).toEqual([
      expect.objectContaining({ field: 'xai_method', message: expect.stringMatching(/eigencam needs a target layer: this graph has no pooling/) }),
    ]);
    // The backbone's last feature map: the input of the last Concat's first branch.
    const header = await readOnnxHeader(model, { nodes: true });
    const layer = header.nodes!.filter((n) => n.opType === 'Mul').at(-1)!.outputs[0]!;
    const created = await stack.api('POST', '/inference-jobs', { ...request, xai_config: { target_layer: layer } });
    expect(created.status).toBe(201);
    const job = await stack.waitFor('inference-jobs', created.body.id, undefined, 120_000);
    expect(outcome(job)).toEqual({ status: 'completed', error_message: null });
    const [r] = (await stack.api('GET', `/inference-jobs/${job.id}/results`)).body.results;
    expect(r.xai).toMatchObject({ method: 'eigencam', target_layer: layer, target_class_id: null, faithfulness: null });
    expect(r.xai.eigencam.activations_shape).toHaveLength(2);
  }, 150_000);

  it('cancels while explaining: the job ends cancelled and its runner stops', async () => {
    const created = await stack.api('POST', '/test-runs', {
      checkpoint_path: `${root}/colors.onnx`,
      dataset_path: `${root}/data`,
      dataset_split: 'test',
      task_type: 'image_classification',
      enable_xai: true,
      xai_method: 'scorecam',
      xai_config: { images: 'all' },
    });
    expect(created.status).toBe(201);
    // SHAP with many samples would do too; ScoreCAM on the input layer runs the model once per channel per image.
    await stack.waitFor('test-runs', created.body.id, (j) => j.status === 'running', 60_000);
    const cancelled = await stack.api('POST', `/test-runs/${created.body.id}/cancel`);
    expect([200, 202]).toContain(cancelled.status);
    const run = await stack.waitFor('test-runs', created.body.id, undefined, 60_000);
    expect(run.status).toBe('cancelled');
  }, 120_000);
});
