// `kinfer run`, the local CLI, as a user runs it: a real process, real files, exit codes.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset, writeFiles, type DatasetFile } from '../../src/samples/color-dataset.ts';
import { runCommand } from '../support/processes.ts';

const KINFER = resolve('bin/kinfer');
let dir: string;
let images: DatasetFile[];
/** The generated file of a class (the generator picks PNG or JPEG). */
const fileOf = (prefix: string) => `images/${images.find((f) => f.path.startsWith(prefix))!.path}`;

const kinfer = (args: string[]) => runCommand(KINFER, args, { cwd: dir, env: { ...process.env, NODE_OPTIONS: '' } });

beforeAll(async () => {
  dir = mkdtempSync(join(process.env.KINFER_TEST_DIR!, 'cli-'));
  writeFileSync(join(dir, 'model.onnx'), buildColorClassifier().model);
  const sidecar = buildColorClassifier({ metadataIn: 'sidecar' });
  writeFileSync(join(dir, 'plain.onnx'), sidecar.model);
  writeFileSync(join(dir, 'plain.onnx.json'), JSON.stringify(sidecar.sidecar));
  images = await buildColorDataset({ perClass: 2, corrupt: ['red'] });
  await writeFiles(join(dir, 'images'), images);
});

describe('kinfer run', () => {
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

  it('writes batch_results.json for a folder, with the corrupt file as an error entry', async () => {
    const res = await kinfer(['run', '--checkpoint', 'model.onnx', '--input-dir', 'images']);
    expect(res.code).toBe(0);
    const out = JSON.parse(readFileSync(join(dir, 'batch_results.json'), 'utf8'));
    expect(out.total_images).toBe(13);
    expect(out.failed_images).toBe(1);
    const byPath = new Map(out.results.map((r: { image_path: string }) => [r.image_path, r]));
    expect(byPath.get(fileOf('test/cyan/cyan_0001').replace(/^images\//, ''))).toMatchObject({ predicted_label: 'cyan' });
    expect(out.results.find((r: { error: string | null }) => r.error)).toMatchObject({ image_path: 'test/red/corrupt_0.jpg' });
    expect(res.stdout).toMatch(/13 images, 1 failed; results written to .*batch_results\.json/);
  });

  it.each([
    [['run', '--checkpoint', 'missing.onnx', '--image', 'model.onnx'], /checkpoint not found: missing\.onnx/],
    [['run', '--checkpoint', 'model.onnx', '--image', 'nope.jpg'], /image not found: nope\.jpg/],
    [['run', '--checkpoint', 'model.onnx'], /exactly one of --image or --input-dir/],
    [['run', '--image', 'x.jpg'], /required option '--checkpoint <path>' not specified/],
    [['run', '--checkpoint', 'model.onnx', '--image', 'x.jpg', '--top-k', 'many'], /--top-k must be a positive integer/],
    [['run', '--checkpoint', 'images/test/red/corrupt_0.jpg', '--image', 'model.onnx'], /cannot load checkpoint/],
  ])('fails with a one-line error and a non-zero exit: %j', async (args, message) => {
    const res = await kinfer(args);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stdout).toBe('');
  });
});
