// Baseline for bench:runner: raw `session.run` on pre-decoded tensors, in its own process, same
// model, batch size and thread settings as the runner. Prints one JSON line.
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [modelPath, batchArg, imagesArg, threadsArg, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg ?? 224);
const batch = Number(batchArg);
const images = Number(imagesArg);
const session = await ort.InferenceSession.create(readFileSync(modelPath!), {
  intraOpNumThreads: Number(threadsArg),
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const input = session.inputNames[0]!;
// Pre-decoded: one tensor per batch, built before the clock starts.
const data = new Float32Array(batch * 3 * size * size);
for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
const tensor = new ort.Tensor('float32', data, [batch, 3, size, size]);
await session.run({ [input]: tensor }); // warm-up
const runs = Math.ceil(images / batch);
const started = performance.now();
const cpuBefore = process.cpuUsage();
for (let i = 0; i < runs; i++) await session.run({ [input]: tensor });
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
process.stdout.write(
  `${JSON.stringify({
    images_per_second: (runs * batch * 1000) / ms,
    ms_per_batch: ms / runs,
    // Every thread's: what ONNX Runtime's threads take per image at this batch.
    cpu_ms_per_image: (cpu.user + cpu.system) / 1000 / (runs * batch),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
  })}\n`,
);
