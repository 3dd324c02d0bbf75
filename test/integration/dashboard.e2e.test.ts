// The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core)
// against the real stack (controller serving the dashboard, predictor, runners, Postgres, S3):
// a prediction from an uploaded image; a test run created in at most 3 clicks and watched to
// Completed without a reload (its first event stream broken); the confusion matrix equal to the
// API's; the Incorrect filter showing exactly the misclassified images; two runs compared; one
// deleted with its artifacts; the sign-in form; no serious accessibility violation (axe-core) on
// any page. Screenshots of each page go to $KINFER_TEST_DIR/screenshots (and to
// $KINFER_SCREENSHOTS_DIR when set: the README's).
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { buildColorClassifier, COLOR_CLASSES } from '../../src/samples/color-classifier.ts';
import { buildColorDataset, type DatasetFile } from '../../src/samples/color-dataset.ts';
import { buildShapeDataset } from '../../src/samples/shape-datasets.ts';
import { buildShapeModel } from '../../src/samples/shape-models.ts';
import { outcome, startTestStack, upload, type TestStack } from '../support/test-stack.ts';

// Code run in the page (page.evaluate) sees the browser's globals.
declare const window: any;
declare const document: any;

const CHROMIUM = process.env.KINFER_CHROMIUM ?? '/usr/bin/chromium';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
let stack: TestStack;
let browser: Browser;
let context: BrowserContext;
let origin: string;
let files: DatasetFile[];
let dataset: string;
let good: string;
let swapped: string;
const shots = join(process.env.KINFER_TEST_DIR!, 'screenshots');

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(shots, { recursive: true });
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (process.env.KINFER_SCREENSHOTS_DIR) {
    mkdirSync(process.env.KINFER_SCREENSHOTS_DIR, { recursive: true });
    copyFileSync(file, join(process.env.KINFER_SCREENSHOTS_DIR, `${name}.png`));
  }
}

/** axe-core's serious and critical violations on the page as it is. */
async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const result = await (
      window as unknown as { axe: { run: (o: unknown) => Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> } }
    ).axe.run({
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}, ${v.nodes} nodes)`);
}

beforeAll(async () => {
  stack = await startTestStack({ KINFER_RUNNER_BATCH_SIZE: '2' });
  origin = stack.apiUrl.replace(/\/api\/v1$/, '');
  dataset = `${stack.s3Prefix}/ui/data`;
  good = `${stack.s3Prefix}/ui/good.onnx`;
  swapped = `${stack.s3Prefix}/ui/swapped.onnx`;
  // Two mislabelled images and a corrupt one: incorrect images, and an error that is not one.
  files = await buildColorDataset({
    perClass: 2,
    mislabeled: [
      ['cyan', 'blue'],
      ['red', 'yellow'],
    ],
    corrupt: ['green'],
  });
  await upload(stack.store, dataset, files);
  await stack.store.write(good, Buffer.from(buildColorClassifier().model));
  const classes = COLOR_CLASSES.map((c, i) => (i === 0 ? { ...c, rgb: COLOR_CLASSES[1]!.rgb } : i === 1 ? { ...c, rgb: COLOR_CLASSES[0]!.rgb } : c));
  await stack.store.write(swapped, Buffer.from(buildColorClassifier({ classes }).model));
  const registered = await stack.api('POST', '/models', {
    name: 'colors',
    version: '1.0.0',
    task_type: 'image_classification',
    checkpoint_path: good,
    stage: 'production',
  });
  expect(registered.status).toBe(201);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  // The browser sends the Authorization header itself (as behind a proxy that injects it).
  // bypassCSP: the page's policy (default-src 'self') would refuse the injected axe-core script.
  context = await browser.newContext({ extraHTTPHeaders: stack.bearer, viewport: { width: 1280, height: 900 }, bypassCSP: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the dashboard in a browser', () => {
  let runId: string;

  it('predicts an uploaded image with the registered production model, and draws it', async () => {
    const page = await context.newPage();
    await page.goto(`${origin}/predict`);
    await page.getByLabel('Model').selectOption('colors@1.0.0');
    const green = files.find((f) => f.path.startsWith('test/green/') && !f.path.includes('corrupt'))!;
    const started = Date.now();
    await page.getByLabel('Choose an image').setInputFiles({ name: 'green.png', mimeType: 'image/png', buffer: Buffer.from(green.bytes) });
    await page.locator('canvas[data-rendered="true"]').waitFor({ timeout: 30_000 });
    const renderedMs = Date.now() - started;
    expect(await page.locator('[data-testid=prediction] h2').innerText()).toMatch(/^green/);
    const bars = await page.locator('ol.bars li .label').allInnerTexts();
    expect(bars).toHaveLength(5);
    expect(bars[0]).toBe('green');
    expect(renderedMs).toBeGreaterThan(0);
    await screenshot(page, 'predict');
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.close();
  });

  it('creates a test run in at most 3 clicks and shows it reach Completed without a reload', async () => {
    const page = await context.newPage();
    let clicks = 0;
    await page.goto(`${origin}/test-runs/new`);
    await page.getByLabel('Registered model').selectOption('');
    clicks++;
    await page.getByLabel('Checkpoint path', { exact: true }).fill(good);
    await page.getByLabel('Dataset path', { exact: true }).fill(dataset);
    await page.getByText('Ready to run.').waitFor({ timeout: 30_000 });
    expect(await accessibilityProblems(page)).toEqual([]);
    await screenshot(page, 'new-test-run');
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    // The run's first event stream breaks at once (a controller restarting): the page opens it again.
    const streams: string[] = [];
    await page.route('**/events', async (route) => {
      streams.push(route.request().url());
      if (streams.length === 1) await route.abort('connectionreset');
      else await route.continue();
    });
    await page.getByRole('button', { name: 'Create test run' }).click();
    clicks++;
    await page.waitForURL(/\/test-runs\/[0-9a-f-]{36}$/);
    runId = page.url().split('/').at(-1)!;
    await page.locator('[data-testid=status]', { hasText: 'completed' }).waitFor({ timeout: 60_000 });
    // The same document all along: it updated itself from the events, on a second stream.
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(streams.length).toBeGreaterThanOrEqual(2);
    await page.unroute('**/events');
    expect(clicks).toBeLessThanOrEqual(3);
    const run = (await stack.api('GET', `/test-runs/${runId}`)).body;
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    await screenshot(page, 'test-run');
    expect(await accessibilityProblems(page)).toEqual([]);

    // The confusion matrix: rows true classes, columns predicted, both axes header cells, raw counts.
    const table = page.locator('table.confusion');
    expect(await table.locator('thead th').allInnerTexts()).toEqual(run.class_names);
    expect(await table.locator('tbody th').allInnerTexts()).toEqual(run.class_names);
    const cells = await table.locator('tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => Number(td.textContent))));
    expect(cells).toEqual(run.confusion_matrix);

    // "Incorrect" shows exactly the misclassified images; the corrupt one is an error, not incorrect.
    await page.getByLabel('Incorrect').check();
    await page.locator('[data-testid=images] tbody tr').first().waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=images] tbody tr')].every((tr) => tr.textContent?.includes('incorrect')));
    const shown = (await page.locator('[data-testid=images] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-image')))).sort();
    const wrong = (await stack.api('GET', `/test-runs/${runId}/images?filter_correct=false&limit=1000`)).body.images
      .map((i: { image_path: string }) => i.image_path)
      .sort();
    expect(wrong.length).toBe(2);
    expect(shown).toEqual(wrong);
    await page.getByLabel('All').check();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=images] tbody tr').length > 2);
    expect(await page.locator('[data-testid=images] tbody tr', { hasText: 'error:' }).count()).toBe(1);
    // Thumbnails of the dataset's images, through the API (decoded by the browser at 160 px or less).
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=images] img.thumb')].some((img: any) => img.complete && img.naturalWidth > 0));
    const widths = await page
      .locator('[data-testid=images] img.thumb')
      .evaluateAll((imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
    expect(widths.filter((w) => w > 0 && w <= 160).length).toBeGreaterThan(0);

    // An off-diagonal cell links to exactly its images.
    const names: string[] = run.class_names;
    const [i, j] = (run.confusion_matrix as number[][]).flatMap((r, a) => r.map((n, b) => [a, b, n] as const)).find(([a, b, n]) => a !== b && n > 0)!;
    const count = run.confusion_matrix[i][j];
    await table.locator(`a[aria-label="${count} images of ${names[i]} predicted as ${names[j]}"]`).click();
    await page.waitForFunction((n: number) => document.querySelectorAll('[data-testid=images] tbody tr').length === n, count);
    const inCell = (
      await stack.api('GET', `/test-runs/${runId}/images?true_label=${encodeURIComponent(names[i]!)}&predicted_label=${encodeURIComponent(names[j]!)}`)
    ).body.images.map((x: { image_path: string }) => x.image_path);
    expect(inCell).toHaveLength(count);
    expect(await page.locator('[data-testid=images] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-image')))).toEqual(inCell);
    await page.close();
  }, 120_000);

  it('compares two runs from the history, and deletes one with its artifacts after a confirmation', async () => {
    const second = await stack.api('POST', '/test-runs', {
      checkpoint_path: swapped,
      dataset_path: dataset,
      task_type: 'image_classification',
      name: 'swapped',
    });
    const done = await stack.waitFor('test-runs', second.body.id);
    expect(outcome(done).status).toBe('completed');
    const page = await context.newPage();
    await page.goto(`${origin}/history`);
    await page.locator(`tr[data-job-id="${runId}"]`).waitFor();
    await screenshot(page, 'history');
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.locator(`tr[data-job-id="${runId}"] input[type=checkbox]`).check();
    await page.locator(`tr[data-job-id="${second.body.id}"] input[type=checkbox]`).check();
    await page.getByRole('button', { name: /Compare selected test runs/ }).click();
    await page.waitForURL(/\/compare\?ids=/);
    const row = page.locator('[data-testid=metric-deltas] tbody tr', { has: page.locator('th', { hasText: /^accuracy$/ }) });
    await row.waitFor();
    const first = (await stack.api('GET', `/test-runs/${runId}`)).body;
    const values = (await row.locator('td').allInnerTexts()).map(Number);
    expect(values[0]).toBeCloseTo(first.overall_metrics.accuracy, 4);
    expect(values[1]).toBeCloseTo(done.overall_metrics.accuracy, 4);
    expect(values[2]).toBeCloseTo(done.overall_metrics.accuracy - first.overall_metrics.accuracy, 4);
    await screenshot(page, 'compare');
    expect(await accessibilityProblems(page)).toEqual([]);

    // Delete the swapped run: a confirmation, then it is gone, rows and artifacts.
    await page.goto(`${origin}/history`);
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.getByRole('button', { name: 'Delete swapped' }).click();
    await page.getByText('Deleted swapped.').waitFor();
    expect(dialogs).toEqual([expect.stringMatching(/^Delete swapped, its results and its artifacts\?/)]);
    expect((await stack.api('GET', `/test-runs/${second.body.id}`)).status).toBe(404);
    await expect(stack.store.read(done.results_path)).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND' });
    expect(await page.locator(`tr[data-job-id="${second.body.id}"]`).count()).toBe(0);
    await page.goto(`${origin}/`);
    await page.locator('table').waitFor();
    await screenshot(page, 'overview');
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.close();
  }, 120_000);

  it("draws a detection run's precision-recall curves, one per class with ground truth, and its per-class AP", async () => {
    const root = `${stack.s3Prefix}/ui/shapes`;
    const data = await buildShapeDataset('detect');
    await upload(stack.store, `${root}/data`, data.files);
    await stack.store.write(`${root}/model.onnx`, Buffer.from(buildShapeModel('detect')));
    const created = await stack.api('POST', '/test-runs', {
      checkpoint_path: `${root}/model.onnx`,
      dataset_path: `${root}/data`,
      dataset_split: 'val',
      task_type: 'object_detection',
    });
    const run = await stack.waitFor('test-runs', created.body.id, undefined, 90_000);
    expect(outcome(run)).toEqual({ status: 'completed', error_message: null });
    const withCurves = run.per_class_metrics.filter((c: { pr_curve: number[] | null }) => c.pr_curve !== null);
    expect(withCurves.length).toBeGreaterThan(0);
    const page = await context.newPage();
    await page.goto(`${origin}/test-runs/${run.id}`);
    const chart = page.getByRole('img', { name: /^Precision-recall curves at IoU 0\.5/ });
    await chart.waitFor();
    expect(await chart.locator('polyline').count()).toBe(withCurves.length);
    // Each line has the run's 101 points.
    const points = await chart.locator('polyline').first().getAttribute('points');
    expect(points!.split(' ')).toHaveLength(101);
    // The metric cards: the primary metric first, then by name; the count of images as the integer
    // it is.
    const cards = page.getByRole('list', { name: 'Metrics' }).getByRole('listitem');
    const labels = await cards.locator('.label').allInnerTexts();
    const names = Object.keys(run.overall_metrics).filter((k) => typeof run.overall_metrics[k] === 'number');
    const rest = names.filter((k) => k !== run.primary_metric_name);
    expect(labels).toEqual([run.primary_metric_name, ...rest.sort()]);
    expect(labels[0]).toBe('bbox/mAP50-95');
    expect(await cards.filter({ hasText: 'evaluated_images' }).locator('.value').innerText()).toBe(String(run.overall_metrics.evaluated_images));
    await screenshot(page, 'detection-run');
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.close();
  }, 120_000);

  it('asks for a token when the browser sends none, and works with it', async () => {
    const plain = await browser.newContext({ bypassCSP: true });
    const page = await plain.newPage();
    await page.goto(`${origin}/history`);
    await page.getByLabel('API token').fill('kinfer_wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect(await accessibilityProblems(page)).toEqual([]);
    await page.getByLabel('API token').fill(stack.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`tr[data-job-id="${runId}"]`).waitFor();
    // The local sign-in link of `kinfer serve`: signed in at once, the token out of the address bar.
    const linked = await (await browser.newContext({ bypassCSP: true })).newPage();
    await linked.goto(`${origin}/history#token=${stack.adminToken}`);
    await linked.locator(`tr[data-job-id="${runId}"]`).waitFor();
    expect(linked.url()).toBe(`${origin}/history`);
    await plain.close();
  });
});
