// For bench:runner's ceiling: the CPU time the runner's own preprocessing takes per image, alone
// and sequential (read the JPEG, decode, resize and crop or letterbox into the uint8 pixels the
// session takes), with the functions the runner calls and the model's own metadata. Prints one
// JSON line: { cpu_ms_per_image }.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeModel } from '../src/contract/model/metadata.ts';
import { readOnnxHeader } from '../src/contract/model/onnx-header.ts';
import { preprocessClassificationWithGeometry } from '../src/runner/classification/preprocess.ts';
import { letterboxTensor } from '../src/runner/detection/letterbox.ts';

const [task, modelPath, folder] = process.argv.slice(2) as ['image_classification' | 'object_detection', string, string];
const { model } = describeModel(await readOnnxHeader(readFileSync(modelPath)), undefined, task);
if (!model) throw new Error(`cannot describe ${modelPath}`);
const { metadata } = model;
const files = readdirSync(folder)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .map((f) => join(folder, f));
const prepare = (bytes: Uint8Array) =>
  task === 'image_classification'
    ? preprocessClassificationWithGeometry(bytes, metadata, 'uint8-nhwc')
    : letterboxTensor(bytes, metadata.inputSize, metadata, 'predict', 'uint8-nhwc');
for (const f of files.slice(0, 8)) await prepare(readFileSync(f)); // warm-up
const before = process.cpuUsage();
for (const f of files) await prepare(readFileSync(f));
const used = process.cpuUsage(before);
process.stdout.write(`${JSON.stringify({ cpu_ms_per_image: (used.user + used.system) / 1000 / files.length })}\n`);
