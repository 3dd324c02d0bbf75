// The nodes that cut a YOLO head's output down to its candidate columns inside the session keep
// exactly the columns where some image of the batch has a class score above the threshold (in
// float32, as decodeYolo compares), in order, at every opset the edit supports; and decoding the
// cut output gives every image the detections decoding the whole output gives. Checked through
// ONNX Runtime and the runner's own session worker; the expected columns are counted here.
import fc from 'fast-check';
import { decodeYolo, type Detection } from '../../src/runner/detection/yolo-postprocess.ts';
import { WorkerSession } from '../../src/runner/inference/inference-session.ts';
import { CANDIDATES_OUTPUT, candidateColumnsWorthIt, withCandidateColumns } from '../../src/runner/model/candidate-columns.ts';
import { candidateColumnsFor } from '../../src/runner/tasks/create-task.ts';
import { parseRunnerEnv } from '../../src/contract/index.ts';
import { GraphBuilder } from '../../src/samples/onnx-writer.ts';
import { buildShapeModel, type ShapeModelKind } from '../../src/samples/shape-models.ts';
import { loadModel } from '../../src/runner/model/load-model.ts';
import { ObjectStore } from '../../src/runner/io/object-store.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A stand-in for a detection head: returns its input [B, C, N] (times one) as `output0`. */
function headModel(channels: number, anchors: number, opset: number): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('head', ['batch', channels, anchors]);
  g.node('Mul', [x, g.weight('one', [1], Float32Array.of(1))], {}, 'output0');
  g.output('output0', ['batch', channels, anchors]);
  return g.toModel({ opset });
}

interface Head {
  batch: number;
  numClasses: number;
  /** Rows after the class scores (mask coefficients, keypoints). */
  extra: number;
  anchors: number;
  values: Float32Array;
}

const channelsOf = (h: Head) => 4 + h.numClasses + h.extra;

/** The edited model's output for `h` through the runner's session worker, and its output names. */
async function runCut(h: Head, conf: number, opset = 17): Promise<{ cut: { dims: number[]; data: Float32Array }; outputNames: string[] }> {
  const model = headModel(channelsOf(h), h.anchors, opset);
  const edited = withCandidateColumns(model, { output: 'output0', numClasses: h.numClasses, conf, shape: [-1, channelsOf(h), h.anchors] });
  if (!edited) throw new Error('not edited');
  const dims = [h.batch, channelsOf(h), h.anchors];
  const { session, info } = await WorkerSession.open(edited, { executionProviders: ['cpu'], intraOpNumThreads: 2 });
  try {
    const out = (await session.run(h.values.slice(), dims)).outputs[0]!;
    return { cut: { dims: out.dims, data: new Float32Array(out.data) }, outputNames: info.outputNames };
  } finally {
    await session.close();
  }
}

/**
 * The columns some image has a candidate in, counted here as Ultralytics decides an image's
 * candidates: its best class score (torch.amax: NaN if any score is) above float32(conf).
 */
function expectedColumns(h: Head, conf: number): number[] {
  const c32 = Math.fround(conf);
  const kept: number[] = [];
  for (let a = 0; a < h.anchors; a++) {
    let some = false;
    for (let b = 0; b < h.batch; b++) {
      const scores = Array.from({ length: h.numClasses }, (_, c) => h.values[(b * channelsOf(h) + 4 + c) * h.anchors + a]!);
      const amax = scores.some(Number.isNaN) ? NaN : Math.max(...scores);
      if (amax > c32) some = true;
    }
    if (some) kept.push(a);
  }
  return kept;
}

/** Whether some image has a class score above `c32` in column `a`, NaN left aside. */
function someScoreAbove(h: Head, a: number, c32: number): boolean {
  for (let b = 0; b < h.batch; b++) for (let c = 0; c < h.numClasses; c++) if (h.values[(b * channelsOf(h) + 4 + c) * h.anchors + a]! > c32) return true;
  return false;
}

/** The full output's `columns`, [B, C, columns.length]. */
function columnsOf(h: Head, columns: number[]): Float32Array {
  const out = new Float32Array(h.batch * channelsOf(h) * columns.length);
  for (let row = 0; row < h.batch * channelsOf(h); row++) columns.forEach((a, k) => (out[row * columns.length + k] = h.values[row * h.anchors + a]!));
  return out;
}

/** A batch of 2, 3 classes, 2 extra rows, 9 columns, each column a case. */
function designedHead(conf: number): Head {
  const h: Head = { batch: 2, numClasses: 3, extra: 2, anchors: 9, values: new Float32Array(2 * 9 * 9) };
  const set = (b: number, row: number, a: number, v: number) => (h.values[(b * 9 + row) * 9 + a] = v);
  const c32 = Math.fround(conf);
  const above = new Float32Array(new Int32Array([new Int32Array(Float32Array.of(c32).buffer)[0]! + 1]).buffer)[0]!; // the next float32
  for (let b = 0; b < 2; b++) for (let a = 0; a < 9; a++) for (let r = 0; r < 4; r++) set(b, r, a, 100 * (r + 1) + a); // boxes
  set(0, 4, 0, c32); // exactly the threshold: not above it
  set(1, 6, 1, above); // just above, second image, last class
  set(0, 7, 2, 0.99); // an extra row only (a mask coefficient): not a score
  set(1, 4, 3, 0.9); // well above
  set(0, 5, 4, 0.5);
  set(1, 5, 4, 0.6); // above in both images
  set(0, 4, 5, -Infinity);
  set(1, 8, 6, Infinity); // an extra row again
  set(0, 5, 7, c32 - 0.01);
  set(0, 4, 8, NaN); // NaN in one image, a candidate in the other: kept for the other
  set(1, 5, 8, 0.9);
  return h;
}

describe('candidate columns', () => {
  it.each([10, 13, 17, 18, 21])(
    'at opset %i: the columns with a class score above the threshold in some image, in order; the output replaced in place',
    async (opset) => {
      const conf = 0.25;
      const h = designedHead(conf);
      expect(expectedColumns(h, conf)).toEqual([1, 3, 4, 8]);
      const { cut, outputNames } = await runCut(h, conf, opset);
      expect(outputNames).toEqual([CANDIDATES_OUTPUT]);
      expect(cut.dims).toEqual([2, 9, 4]);
      expect(Array.from(cut.data)).toEqual(Array.from(columnsOf(h, [1, 3, 4, 8])));
    },
  );

  it('none above the threshold: an empty output, which decodes to no detections', async () => {
    const h = designedHead(0.25);
    const { cut } = await runCut(h, 0.95);
    expect(cut.dims).toEqual([2, 9, 0]);
    expect(decodeYolo(cut.data.subarray(0, 0), 3, 0, { conf: 0.95, iou: 0.7, maxDet: 300, multiLabel: true })).toEqual([]);
  });

  it('a model older than Slice with inputs (opset 9) is left as it is', () => {
    expect(withCandidateColumns(headModel(7, 4, 9), { output: 'output0', numClasses: 3, conf: 0.25, shape: [-1, 7, 4] })).toBeUndefined();
  });

  it('every image decodes to the same detections from the cut output as from the whole one (predict and val NMS)', async () => {
    // Scores from a few values around the threshold (ties, the threshold itself), boxes that overlap.
    const conf = 0.25;
    const c32 = Math.fround(conf);
    // NaN too: a broken or overflowing head, where one image's NaN must not cost another its detections.
    const score = fc.constantFrom(0, 0.01, c32, 0.2500001, 0.3, 0.3, 0.5, 0.9, NaN);
    const head = fc
      .record({
        batch: fc.integer({ min: 1, max: 3 }),
        numClasses: fc.integer({ min: 1, max: 5 }),
        // The last extra row carries each column's anchor id through the cut, as a mask row would its coefficients.
        extra: fc.integer({ min: 1, max: 3 }),
        anchors: fc.integer({ min: 1, max: 40 }),
      })
      .chain((s) => {
        const channels = 4 + s.numClasses + s.extra;
        const box = fc.float({ min: 0, max: 64, noNaN: true });
        return fc
          .array(fc.tuple(box, box, box, box, fc.array(score, { minLength: s.numClasses + s.extra, maxLength: s.numClasses + s.extra })), {
            minLength: s.batch * s.anchors,
            maxLength: s.batch * s.anchors,
          })
          .map((cols) => {
            const values = new Float32Array(s.batch * channels * s.anchors);
            cols.forEach(([x, y, w, hh, rest], i) => {
              const b = Math.floor(i / s.anchors);
              const a = i % s.anchors;
              [x, y, w, hh, ...rest].forEach((v, r) => (values[(b * channels + r) * s.anchors + a] = v));
              values[(b * channels + channels - 1) * s.anchors + a] = a;
            });
            return { ...s, values } satisfies Head;
          });
      });
    await fc.assert(
      fc.asyncProperty(head, fc.boolean(), async (h, multiLabel) => {
        const { cut } = await runCut(h, conf);
        const channels = channelsOf(h);
        const k = cut.dims[2]!;
        expect(cut.dims).toEqual([h.batch, channels, k]);
        const kept = Array.from(cut.data.subarray((channels - 1) * k, channels * k));
        expect(Array.from(cut.data)).toEqual(Array.from(columnsOf(h, kept)));
        expect(kept.every((a, j) => j === 0 || a > kept[j - 1]!)).toBe(true);
        // Every column some image has a candidate in (Ultralytics' rule); exactly those without NaN.
        // With NaN, ONNX Runtime's ReduceMax may or may not propagate it (it depends on where the NaN
        // lies), so a column may be kept that no image decodes: never one without a score above.
        const candidates = expectedColumns(h, conf);
        if (!h.values.some(Number.isNaN)) expect(kept).toEqual(candidates);
        expect(candidates.filter((a) => !kept.includes(a))).toEqual([]);
        expect(kept.filter((a) => !someScoreAbove(h, a, c32))).toEqual([]);
        const opts = { conf, iou: 0.7, maxDet: 300, multiLabel };
        for (let b = 0; b < h.batch; b++) {
          const whole = decodeYolo(h.values.subarray(b * channels * h.anchors, (b + 1) * channels * h.anchors), h.numClasses, h.anchors, opts);
          const fromCut = decodeYolo(cut.data.subarray(b * channels * kept.length, (b + 1) * channels * kept.length), h.numClasses, kept.length, opts);
          // A detection's anchor is its column in the output decoded: the cut one's maps back through the kept columns.
          expect(fromCut.map((d): Detection => ({ ...d, anchor: kept[d.anchor]! }))).toEqual(whole);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('the runner asks for it for object tasks at a threshold where few columns pass, not at yolo val’s 0.001', () => {
    const env = (extra: Record<string, string>) =>
      parseRunnerEnv({
        JOB_ID: '00000000-0000-4000-8000-000000000000',
        BACKEND_BASE_URL: 'http://127.0.0.1:1',
        TRACE_ID: 't',
        CALLBACK_TOKEN: 'x',
        CHECKPOINT_PATH: 'file:///m.onnx',
        ARTIFACTS_URI: 'file:///a',
        ...extra,
      });
    const inference = { INFERENCE_TYPE: 'dataset', INPUT_CONFIG: JSON.stringify({ dataset_path: 'file:///d' }) };
    const testRun = { INFERENCE_TYPE: 'test_run', DATASET_PATH: 'file:///d' };
    expect(candidateColumnsFor(env({ ...inference, TASK_TYPE: 'object_detection' }))).toEqual({ conf: 0.25 });
    expect(candidateColumnsFor(env({ ...inference, TASK_TYPE: 'instance_segmentation', CONF_THRESHOLD: '0.1' }))).toEqual({ conf: 0.1 });
    expect(candidateColumnsFor(env({ ...inference, TASK_TYPE: 'object_detection', CONF_THRESHOLD: '0.05' }))).toBeUndefined();
    expect(candidateColumnsFor(env({ ...testRun, TASK_TYPE: 'object_detection' }))).toBeUndefined();
    expect(candidateColumnsFor(env({ ...testRun, TASK_TYPE: 'pose_estimation', CONF_THRESHOLD: '0.25' }))).toEqual({ conf: 0.25 });
    expect(candidateColumnsFor(env({ ...inference, TASK_TYPE: 'image_classification' }))).toBeUndefined();
    expect([0.001, 0.05, 0.0999].map(candidateColumnsWorthIt)).toEqual([false, false, false]);
  });

  it.each<[ShapeModelKind, 'object_detection' | 'instance_segmentation' | 'pose_estimation', boolean]>([
    ['detect', 'object_detection', true],
    ['segment', 'instance_segmentation', true],
    ['pose', 'pose_estimation', true],
    ['detect-e2e', 'object_detection', false],
  ])('loadModel cuts a %s head’s first output (%s): %s', async (kind, task, cut) => {
    const dir = mkdtempSync(join(tmpdir(), 'candidate-columns-'));
    try {
      const file = join(dir, `${kind}.onnx`);
      writeFileSync(file, buildShapeModel(kind));
      const store = new ObjectStore({ region: 'us-east-1' });
      const options = { executionProviders: ['cpu'], intraOpNumThreads: 1, expectedTask: task };
      const model = await loadModel(store, pathToFileURL(file).href, { ...options, candidateColumns: { conf: 0.25 } });
      const plain = await loadModel(store, pathToFileURL(file).href, options);
      try {
        expect(model.candidateColumns).toBe(cut);
        expect(model.info.outputNames).toEqual(cut ? [CANDIDATES_OUTPUT, ...plain.info.outputNames.slice(1)] : plain.info.outputNames);
        expect(plain.candidateColumns).toBe(false);
      } finally {
        await model.session.close();
        await plain.session.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
