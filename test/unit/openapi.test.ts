// The OpenAPI document and the routes are one: every route the REST API has is described, every
// operation described is a route; and the request bodies it shows are the zod schemas that
// validate them (a field the schema takes appears, with its enum).
import type express from 'express';
import { createControllerApp } from '../../src/controller/api/app.ts';
import { OPERATIONS, openApiDocument } from '../../src/controller/api/openapi.ts';
import { StorageClient } from '../../src/storage/object-store.ts';
import { quietLog } from '../support/in-process.ts';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  matchers?: unknown[];
  name?: string;
}

/** Method and path of every route under the app's /api/v1 router, in OpenAPI's spelling. */
function apiRoutes(app: express.Express): string[] {
  const routes: string[] = [];
  const stack = (app as unknown as { router: { stack: Layer[] } }).router.stack;
  for (const layer of stack) {
    if (layer.name !== 'router') continue;
    for (const inner of layer.handle!.stack!) {
      if (!inner.route) continue;
      for (const method of Object.keys(inner.route.methods)) routes.push(`${method} ${inner.route.path.replace(/[:*](\w+)/g, '{$1}')}`);
    }
  }
  return routes.sort();
}

describe('the OpenAPI document', () => {
  const app = createControllerApp({
    store: {} as never,
    admission: {} as never,
    log: quietLog(),
    ready: async () => undefined,
    tier: {} as never,
    auth: {} as never,
    tokens: {} as never,
    limiter: {} as never,
    models: {} as never,
    capabilities: async () => ({}),
    events: {} as never,
    artifacts: { storage: new StorageClient({ region: 'us-east-1' }), rootUri: 'file:///tmp/kinfer-artifacts' },
  });

  it('describes every route of the REST API, and nothing else', () => {
    const described = OPERATIONS.map((o) => `${o.method} ${o.path}`).sort();
    const routes = apiRoutes(app);
    expect(routes.length).toBeGreaterThan(30);
    expect(described).toEqual(routes);
  });

  it('is OpenAPI 3.1 with request bodies from the validating schemas', () => {
    const doc = openApiDocument('0.0.0') as { openapi: string; paths: Record<string, Record<string, any>> };
    expect(doc.openapi).toBe('3.1.0');
    const body = doc.paths['/test-runs']!.post.requestBody.content['application/json'].schema;
    expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(['checkpoint_path', 'model', 'dataset_path', 'task_type', 'xai_method']));
    expect(body.properties.task_type.enum).toEqual(expect.arrayContaining(['image_classification', 'object_detection', 'semantic_segmentation']));
    expect(body.required).toEqual(expect.arrayContaining(['dataset_path', 'task_type']));
    const list = doc.paths['/inference-jobs']!.get.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`);
    expect(list).toEqual(['query:skip', 'query:limit', 'query:status', 'query:task_type', 'query:model', 'query:since', 'query:until']);
    expect(doc.paths['/test-runs/{id}/events']!.get.responses['200'].content).toHaveProperty(['text/event-stream']);
  });
});
