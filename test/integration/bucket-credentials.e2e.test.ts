// Credentials per bucket: a team's bucket on another S3 server, with keys of its own, read by the
// admission and by the runner with those keys only; the keys never show in a response or a log.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildColorClassifier } from '../../src/samples/color-classifier.ts';
import { buildColorDataset } from '../../src/samples/color-dataset.ts';
import { StorageClient } from '../../src/storage/object-store.ts';
import { freePort } from '../support/ports.ts';
import { startS3Server, type S3Server } from '../support/s3-server.ts';
import { startTestStack, upload, type TestStack } from '../support/test-stack.ts';

const SECRET = 'team-b-very-secret-key';
let teamB: S3Server;
let stack: TestStack;
let model: string;
let dataset: string;

beforeAll(async () => {
  teamB = await startS3Server({
    port: await freePort(),
    dataDir: join(process.env.KINFER_TEST_DIR!, `s3-team-b-${Date.now()}`),
    buckets: ['team-b'],
    accessKeyId: 'team-b',
    secretAccessKey: SECRET,
  });
  const buckets = { 'team-b': { access_key_id: 'team-b', secret_access_key: SECRET, endpoint: teamB.endpoint } };
  stack = await startTestStack({ KINFER_S3_BUCKET_CREDENTIALS: JSON.stringify(buckets) });
  model = 's3://team-b/models/colors.onnx';
  await new StorageClient({ region: 'us-east-1', buckets }).write(model, buildColorClassifier().model);
  dataset = `${stack.s3Prefix}/datasets/colors`;
  await upload(stack.store, dataset, await buildColorDataset({ perClass: 2 }));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await teamB?.stop();
});

describe('credentials per bucket', () => {
  it('reads a model from a bucket with its own endpoint and keys, at submit and in the runner; the default keys cannot', async () => {
    const defaults = new StorageClient({
      endpoint: process.env.S3_ENDPOINT,
      region: 'us-east-1',
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
    });
    expect(await defaults.objectExists(model).catch(() => false)).toBe(false);
    const created = await stack.api('POST', '/test-runs', { checkpoint_path: model, dataset_path: dataset, task_type: 'image_classification' });
    expect(created.status).toBe(201);
    const run = await stack.waitFor('test-runs', created.body.id);
    expect(run).toMatchObject({ status: 'completed', processed_images: 12 });
    expect(JSON.stringify(run)).not.toContain(SECRET);
    const logs = join(stack.home, 'logs');
    for (const name of readdirSync(logs)) expect([name, readFileSync(join(logs, name), 'utf8').includes(SECRET)]).toEqual([name, false]);
  });
});
