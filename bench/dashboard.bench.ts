// bench:dashboard — the dashboard's usability figures, in a real headless Chromium against the
// stack of `kinfer serve`:
//   first load: bytes transferred for `/` (page, script, stylesheet; uncompressed and as sent) and
//               the time to the page's first table, cold (new browser context) and warm;
//   predict:    time from giving the page an image (as a drop does) to the drawn prediction, for
//               the sample classifier (goal: under 500 ms), over `--images` images, the model warm.
// Baseline in the same run: the same prediction with curl-like fetch from Node (no browser), so
// the browser's share is visible.
//
//   npm run bench:dashboard [-- --images 30]
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { startStack } from '../src/cli/stack.ts';
import { buildColorClassifier } from '../src/samples/color-classifier.ts';
import { buildColorDataset } from '../src/samples/color-dataset.ts';
import { freePort } from '../test/support/ports.ts';

// Code run in the page (page.evaluate) sees the browser's document.
declare const document: any;
declare const window: any;

const { values: args } = parseArgs({ options: { images: { type: 'string', default: '30' } } });
const N = Number(args.images);
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;

execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build-dashboard.ts', import.meta.url))], { stdio: 'inherit' });
const dir = mkdtempSync(join(tmpdir(), 'kinfer-bench-dashboard-'));
chmodSync(dir, 0o755);
const stack = await startStack({
  home: join(dir, 'kinfer'),
  apiPort: await freePort(),
  callbackPort: await freePort(),
  predictorPort: await freePort(),
  pgPort: await freePort(),
  serviceLogs: 'files',
  env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', KINFER_PREDICT_CACHE_ENTRIES: '0' },
});
const browser = await chromium.launch({
  executablePath: process.env.KINFER_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const origin = stack.apiUrl.replace(/\/api\/v1$/, '');
  const bearer = { authorization: `Bearer ${stack.adminToken}` };
  const model = join(stack.home, 'colors.onnx');
  writeFileSync(model, buildColorClassifier().model);
  const registered = await fetch(`${stack.apiUrl}/models`, {
    method: 'POST',
    headers: { ...bearer, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'colors', version: '1', task_type: 'image_classification', checkpoint_path: model, stage: 'production' }),
  });
  if (registered.status !== 201) throw new Error(`registering: ${registered.status} ${await registered.text()}`);
  const images = (await buildColorDataset({ perClass: Math.ceil(N / 6), seed: 5 })).slice(0, N);

  // First load, cold and warm.
  const loads: Array<{ run: string; ms: number; bytes: number; encoded: number }> = [];
  for (const run of ['cold', 'warm']) {
    const context = await browser.newContext({ extraHTTPHeaders: bearer });
    const page = await context.newPage();
    if (run === 'warm') await page.goto(`${origin}/`);
    const started = Date.now();
    await page.goto(`${origin}/`);
    await page.locator('main h1').waitFor();
    const ms = Date.now() - started;
    // In the page: the resource timings of the page and its assets (the API's answers left out).
    const sizes = await page.evaluate(() => {
      const timings = (window as any).performance;
      const entries: Array<{ name: string; decodedBodySize: number; encodedBodySize: number }> = [
        ...timings.getEntriesByType('resource'),
        ...timings.getEntriesByType('navigation'),
      ];
      return entries
        .filter((e) => !e.name.includes('/api/'))
        .reduce((s, e) => ({ bytes: s.bytes + e.decodedBodySize, encoded: s.encoded + e.encodedBodySize }), { bytes: 0, encoded: 0 });
    });
    loads.push({ run, ms, ...sizes });
    await context.close();
  }

  // Drop to drawn prediction.
  const context = await browser.newContext({ extraHTTPHeaders: bearer });
  const page = await context.newPage();
  await page.goto(`${origin}/predict`);
  await page.getByLabel('Model').selectOption('colors@1');
  const times: number[] = [];
  for (const [i, f] of images.entries()) {
    await page.evaluate(() => document.querySelector('canvas')?.removeAttribute('data-rendered'));
    const started = performance.now();
    await page.getByLabel('Choose an image').setInputFiles({ name: `img${i}.png`, mimeType: 'image/png', buffer: Buffer.from(f.bytes) });
    await page.locator('canvas[data-rendered="true"]').waitFor();
    if (i > 0) times.push(performance.now() - started); // the first loads the model
  }
  const direct: number[] = [];
  for (const f of images.slice(1)) {
    const form = new FormData();
    form.set('model', 'colors');
    form.append('image', new Blob([new Uint8Array(f.bytes)]), 'x.png');
    const started = performance.now();
    const res = await fetch(`${stack.apiUrl}/predict`, { method: 'POST', headers: bearer, body: form });
    await res.json();
    direct.push(performance.now() - started);
  }
  await context.close();

  console.log(`\nbench:dashboard — headless Chromium ${browser.version()}, sample colour classifier, ${times.length} images\n`);
  console.log('| first load | ms to the first page | bytes (uncompressed) | bytes sent |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const l of loads) console.log(`| ${l.run} | ${l.ms} | ${l.bytes} | ${l.encoded} |`);
  const row = (name: string, xs: number[]) =>
    `| ${name} | ${quantile(xs, 0.5).toFixed(0)} | ${quantile(xs, 0.95).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`;
  console.log('\n| prediction | p50 ms | p95 ms | max ms |\n| --- | ---: | ---: | ---: |');
  console.log(row('drop to drawn prediction (browser)', times));
  console.log(row('the same request from Node through the controller (baseline)', direct));
  console.log(`\ngoal: drop to rendered prediction under 500 ms: p95 ${quantile(times, 0.95).toFixed(0)} ms`);
} finally {
  await browser.close();
  await stack.stop();
}
