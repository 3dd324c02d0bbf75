// The contract's model description: the ONNX header read as a stream (checked against ONNX
// Runtime's own view of the same file), metadata resolution, whether a model fits a task, and how
// a dataset's classes line up with a model's.
import * as ort from 'onnxruntime-node';
import {
  describeModel,
  fromMetadataProps,
  matchDatasetClasses,
  cocoDatasetClasses,
  OnnxFormatError,
  parsePythonNames,
  readOnnxHeader,
  type OnnxHeader,
} from '../../src/contract/index.ts';
import { GraphBuilder, type Dim } from '../../src/samples/onnx-writer.ts';

/** A model with the given input and outputs (each output an Identity-fed placeholder of its own shape). */
function model(input: Dim[], outputs: Dim[][], metadata: Record<string, string> = {}, weightsAsInputs = false): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('images', input);
  const w = g.weight('w', [4], new Float32Array([1, 2, 3, 4]));
  if (weightsAsInputs) g.input('w', [4]);
  outputs.forEach((dims, i) => {
    g.node('Identity', [i === 0 ? x : w], {}, `out${i}`);
    g.output(`out${i}`, dims);
  });
  return g.toModel({ metadata });
}

async function* chunks(bytes: Uint8Array, size: number) {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const header = (inputs: number[][], outputs: number[][], metadataProps: Record<string, string> = {}): OnnxHeader => ({
  metadataProps,
  inputs: inputs.map((dims, i) => ({ name: `in${i}`, elemType: 1, dims })),
  outputs: outputs.map((dims, i) => ({ name: `out${i}`, elemType: 1, dims })),
});

describe('ONNX header', () => {
  const bytes = model([1, 3, 'h', 'w'], [[1, 3, 'h', 'w'], [4]], { names: "{0: 'a', 1: 'b'}", imgsz: '[8, 8]', task: 'classify' });

  it('reads metadata_props and shapes as ONNX Runtime sees them, whatever the chunking', async () => {
    const session = await ort.InferenceSession.create(bytes);
    const dims = (m: readonly ort.InferenceSession.ValueMetadata[]) => m.map((v) => (v.isTensor ? v.shape.map((d) => (typeof d === 'number' ? d : -1)) : null));
    const expected = { inputs: dims(session.inputMetadata), outputs: dims(session.outputMetadata) };
    await session.release();
    for (const source of [bytes, chunks(bytes, 1), chunks(bytes, 7), chunks(bytes, 4096)]) {
      const h = await readOnnxHeader(source);
      expect(h.metadataProps).toEqual({ names: "{0: 'a', 1: 'b'}", imgsz: '[8, 8]', task: 'classify' });
      expect({ inputs: h.inputs.map((i) => i.dims), outputs: h.outputs.map((o) => o.dims) }).toEqual(expected);
      expect(h.outputs.map((o) => o.name)).toEqual(['out0', 'out1']);
    }
    expect(expected.inputs).toEqual([[1, 3, -1, -1]]);
  });

  it('leaves weights that old exporters list as graph inputs out of the inputs', async () => {
    const h = await readOnnxHeader(model([1, 3, 8, 8], [[1, 3, 8, 8]], {}, true));
    expect(h.inputs.map((i) => i.name)).toEqual(['images']);
  });

  it('refuses what is not an ONNX model, and a truncated one', async () => {
    await expect(readOnnxHeader(new TextEncoder().encode('this is not a model'))).rejects.toThrow(OnnxFormatError);
    await expect(readOnnxHeader(bytes.subarray(0, bytes.length - 5))).rejects.toThrow(OnnxFormatError);
    await expect(readOnnxHeader(new Uint8Array(0))).rejects.toThrow(/no graph/);
  });
});

describe('model metadata', () => {
  it('parses Ultralytics names, a Python dict literal with either quote style', () => {
    expect(parsePythonNames(`{0: 'person', 1: "driver's license", 2: 'say \\'hi\\''}`)).toEqual(['person', "driver's license", "say 'hi'"]);
  });

  it('lets metadata_props win over the sidecar, field by field, with Ultralytics defaults', () => {
    const { model: m, problems } = describeModel(
      header([[1, 3, -1, -1]], [[1, 2]], { names: "{0: 'cat', 1: 'dog'}", task: 'classify' }),
      { imgsz: 64, names: ['x', 'y'], mean: [0.5, 0.5, 0.5] },
      'image_classification',
    );
    expect(problems).toEqual([]);
    expect(m!.metadata).toEqual({
      task: 'image_classification',
      classNames: ['cat', 'dog'],
      namedClasses: true,
      inputSize: [64, 64],
      stride: undefined,
      kptShape: undefined,
      resizeShorter: 64,
      interpolation: 'bilinear',
      mean: [0.5, 0.5, 0.5],
      std: [1, 1, 1],
    });
  });

  it('takes the class count from the output when the model names none', () => {
    const { model: m } = describeModel(header([[1, 3, 32, 32]], [[1, 4 + 3, 100]]), undefined, 'object_detection');
    expect(m!.metadata).toMatchObject({ classNames: ['class_0', 'class_1', 'class_2'], namedClasses: false, inputSize: [32, 32] });
    expect(fromMetadataProps({ 'kinfer.mean': '[0.1, 0.2, 0.3]' })).toEqual({ mean: [0.1, 0.2, 0.3] });
    expect(fromMetadataProps({ 'kinfer.interpolation': '"bicubic"' })).toEqual({ interpolation: 'bicubic' });
    expect(() => fromMetadataProps({ 'kinfer.interpolation': '"lanczos"' })).toThrow(/interpolation/);
  });
});

describe('does a model fit the task', () => {
  const fit = (outputs: number[][], props: Record<string, string>, task: Parameters<typeof describeModel>[2], input = [1, 3, 64, 64]) =>
    describeModel(header([input], outputs, props), undefined, task).problems;

  it('refuses a classifier whose output count disagrees with its names', () => {
    expect(fit([[1, 3]], { names: "{0: 'a', 1: 'b', 2: 'c', 3: 'd'}" }, 'image_classification')).toEqual([
      { field: 'checkpoint_path', message: 'the model outputs 3 class scores but its metadata names 4 classes' },
    ]);
    expect(fit([[1, 4]], { names: "{0: 'a', 1: 'b', 2: 'c', 3: 'd'}" }, 'image_classification')).toEqual([]);
  });

  it('names both tasks when the model was exported for another one', () => {
    expect(fit([[1, 84, 8400]], { task: 'detect' }, 'image_classification')).toEqual([
      { field: 'task_type', message: "the model's task is object_detection but the job asks for image_classification" },
    ]);
  });

  it('checks the YOLO layouts: classes, mask prototypes, keypoints, end-to-end', () => {
    const two = { names: "{0: 'a', 1: 'b'}" };
    expect(fit([[1, 6, 100]], two, 'object_detection')).toEqual([]);
    expect(fit([[1, 300, 6]], two, 'object_detection')).toEqual([]);
    expect(fit([[1, 7, 100]], two, 'object_detection')[0]!.message).toBe("the model's output [1, 7, 100] does not fit 2 classes: expected [B, 6, N]");
    expect(fit([[1, 38, 100]], two, 'instance_segmentation')[0]!.message).toMatch(/second output with the mask prototypes/);
    expect(
      fit(
        [
          [1, 38, 100],
          [1, 32, 16, 16],
        ],
        two,
        'instance_segmentation',
      ),
    ).toEqual([]);
    expect(fit([[1, 4 + 2 + 51, 100]], two, 'pose_estimation')).toEqual([]);
    expect(fit([[1, 4 + 2 + 34, 100]], { ...two, kpt_shape: '[17, 2]' }, 'pose_estimation')).toEqual([]);
    expect(fit([[1, 4 + 2 + 34, 100]], two, 'pose_estimation')[0]!.message).toMatch(/does not fit 2 classes \+ 51 keypoint values/);
  });

  it('refuses an input that is not NCHW with 3 channels, and one whose size cannot be known', () => {
    expect(fit([[1, 2]], {}, 'image_classification', [1, 1, 64, 64])[0]!.message).toBe(
      "expected an NCHW input with 3 channels, the model's input is [1, 1, 64, 64]",
    );
    expect(fit([[1, 2]], {}, 'image_classification', [1, 3, -1, -1])[0]!.message).toMatch(/input size unknown/);
  });

  it('refuses semantic segmentation beyond 255 classes', () => {
    expect(fit([[1, 300, 16, 16]], {}, 'semantic_segmentation')[0]!.message).toMatch(/up to 255 classes/);
  });
});

describe('dataset classes against model classes', () => {
  const named = (names: string[]) => ({ classNames: names, namedClasses: true });
  const unnamed = (n: number) => ({ classNames: Array.from({ length: n }, (_, i) => `class_${i}`), namedClasses: false });

  it('lets a model know more classes than the dataset, not fewer', () => {
    const imagenet = named(['cat', 'dog', 'fish', 'owl']);
    expect(matchDatasetClasses(imagenet, { classes: ['owl', 'cat'], ordered: false, what: 'class folders' })).toEqual({
      classNames: ['cat', 'dog', 'fish', 'owl'],
      problems: [],
    });
    expect(matchDatasetClasses(imagenet, { classes: ['cat', 'zebra'], ordered: false, what: 'class folders' }).problems).toEqual([
      "dataset class folders not among the model's classes: zebra (model classes: cat, dog, fish, owl)",
    ]);
  });

  it('without names, pairs sorted folders with outputs only when the counts agree', () => {
    expect(matchDatasetClasses(unnamed(2), { classes: ['b', 'a'], ordered: false, what: 'class folders' })).toEqual({ classNames: ['a', 'b'], problems: [] });
    expect(matchDatasetClasses(unnamed(1000), { classes: ['b', 'a'], ordered: false, what: 'class folders' }).problems[0]).toMatch(
      /names no classes and outputs 1000 class scores, but the dataset has 2 class folders/,
    );
  });

  it('takes COCO categories in id order, and requires only the annotated ones to be known', () => {
    const file = {
      categories: [
        { id: 7, name: 'b' },
        { id: 3, name: 'a' },
        { id: 9, name: 'unused' },
      ],
      annotations: [{ category_id: 7 }, { category_id: 3 }],
    };
    expect(matchDatasetClasses(unnamed(3), cocoDatasetClasses(file)).classNames).toEqual(['a', 'b', 'unused']);
    expect(matchDatasetClasses(named(['a', 'b']), cocoDatasetClasses(file)).problems).toEqual([]);
  });
});
