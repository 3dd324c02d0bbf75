// Whether kinfer's processes turn ONNX Runtime's telemetry off (that they do, in the runner and the
// predictor processes, is shown in runner-termination.test.ts and predictor-process.test.ts).
import { disableOrtTelemetry } from '../../src/runner/inference/ort-telemetry.ts';

it('turns ONNX Runtime telemetry off when no value is set (an empty one counts as none), and keeps a value that is', () => {
  const decide = (env: NodeJS.ProcessEnv) => {
    disableOrtTelemetry(env);
    return env.ORT_DISABLE_TELEMETRY;
  };
  expect([decide({}), decide({ ORT_DISABLE_TELEMETRY: '' }), decide({ ORT_DISABLE_TELEMETRY: '0' }), decide({ ORT_DISABLE_TELEMETRY: 'true' })]).toEqual([
    '1',
    '1',
    '0',
    'true',
  ]);
});

it('the test run itself: the environment ONNX Runtime reads in the test processes has it set (Jest gives a suite only a copy of process.env)', async () => {
  const { Worker } = await import('node:worker_threads');
  // A worker thread starts from the process's real environment, as the session worker does.
  const worker = new Worker('require("node:worker_threads").parentPort.postMessage(process.env.ORT_DISABLE_TELEMETRY ?? null)', { eval: true });
  const seen = await new Promise((resolve) => worker.once('message', resolve));
  await worker.terminate();
  expect(seen).toBeTruthy();
});
