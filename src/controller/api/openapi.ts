// The REST API described as OpenAPI 3.1, from the same zod schemas that validate requests
// (z.toJSONSchema: JSON Schema 2020-12, OpenAPI 3.1's dialect). GET /api/v1/openapi.json serves
// it and /api/v1/docs lists it for people; test/unit/openapi.test.ts checks that every route the
// app has is here and every operation here is a route.
import { z } from 'zod';
import { HTTP_ERRORS } from '../../http/errors.ts';
import { ExportQuery } from './exports.ts';
import { ListModels, RegisterModel, Traffic, UpdateModel } from './models.ts';
import { CompareQuery, CreateInferenceJob, CreateTestRun, ImagesQuery, ListQuery, PageQuery, ValidateRequest } from './requests.ts';
import { CreateToken } from './tokens.ts';

interface Operation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI's path template, under /api/v1. */
  path: string;
  summary: string;
  tag: 'jobs' | 'models' | 'tokens' | 'lifecycle';
  query?: z.ZodObject;
  body?: z.ZodType;
  /** 2xx answer: status and media type (JSON unless said). */
  ok?: { status: number; media?: string; description?: string };
}

const JOBS = [
  ['test-runs', 'test run'],
  ['inference-jobs', 'inference job'],
] as const;

export const OPERATIONS: Operation[] = [
  { method: 'post', path: '/test-runs', summary: 'Submit a test run (labelled dataset: metrics)', tag: 'jobs', body: CreateTestRun, ok: { status: 201 } },
  {
    method: 'post',
    path: '/inference-jobs',
    summary: 'Submit an inference job (images: predictions)',
    tag: 'jobs',
    body: CreateInferenceJob,
    ok: { status: 201 },
  },
  ...JOBS.flatMap(([segment, what]): Operation[] => [
    { method: 'get', path: `/${segment}`, summary: `List ${what}s, newest first`, tag: 'jobs', query: ListQuery },
    { method: 'get', path: `/${segment}/{id}`, summary: `One ${what}`, tag: 'jobs' },
    { method: 'delete', path: `/${segment}/{id}`, summary: `Delete a finished ${what}: its rows and artifacts`, tag: 'jobs', ok: { status: 204 } },
    { method: 'post', path: `/${segment}/{id}/cancel`, summary: `Cancel a pending or running ${what}`, tag: 'jobs' },
    { method: 'get', path: `/${segment}/{id}/export`, summary: `Every per-image result (json, csv, COCO)`, tag: 'jobs', query: ExportQuery },
    {
      method: 'get',
      path: `/${segment}/{id}/events`,
      summary: `Live progress (server-sent events: status, progress, done)`,
      tag: 'jobs',
      ok: { status: 200, media: 'text/event-stream' },
    },
    {
      method: 'get',
      path: `/${segment}/{id}/images/{index}/thumbnail`,
      summary: `A 160-pixel JPEG of one image the ${what} read`,
      tag: 'jobs',
      ok: { status: 200, media: 'image/jpeg' },
    },
    {
      method: 'get',
      path: `/${segment}/{id}/artifacts/{path}`,
      summary: `One artifact of the ${what} (results.json, a visualization...), streamed from storage`,
      tag: 'jobs',
      ok: { status: 200, media: 'application/octet-stream' },
    },
  ]),
  {
    method: 'get',
    path: '/test-runs/{id}/images',
    summary: 'Per-image results of a test run, with the correct/incorrect filter',
    tag: 'jobs',
    query: ImagesQuery,
  },
  { method: 'get', path: '/inference-jobs/{id}/results', summary: 'Per-image predictions of an inference job', tag: 'jobs', query: PageQuery },
  {
    method: 'get',
    path: '/test-runs/compare',
    summary: 'Test runs of one dataset side by side: metric and per-class deltas, disagreeing images',
    tag: 'jobs',
    query: CompareQuery,
  },
  { method: 'post', path: '/validate', summary: 'The whole submit-time validation of a request, nothing created', tag: 'lifecycle', body: ValidateRequest },
  { method: 'get', path: '/capabilities', summary: 'What this installation can do', tag: 'lifecycle' },
  {
    method: 'post',
    path: '/models',
    summary: 'Register a model version (its ONNX file is read and checked)',
    tag: 'models',
    body: RegisterModel,
    ok: { status: 201 },
  },
  { method: 'get', path: '/models', summary: 'List registered versions', tag: 'models', query: ListModels },
  { method: 'get', path: '/models/{name}/versions/{version}', summary: 'One registered version', tag: 'models' },
  { method: 'patch', path: '/models/{name}/versions/{version}', summary: "Change a version's stage or serving settings", tag: 'models', body: UpdateModel },
  { method: 'delete', path: '/models/{name}/versions/{version}', summary: 'Delete a version', tag: 'models', ok: { status: 204 } },
  { method: 'get', path: '/models/{name}/traffic', summary: "A name's traffic split over its versions", tag: 'models' },
  { method: 'put', path: '/models/{name}/traffic', summary: "Split a name's traffic over its versions (A/B)", tag: 'models', body: Traffic },
  { method: 'delete', path: '/models/{name}/traffic', summary: 'Remove the traffic split', tag: 'models', ok: { status: 204 } },
  { method: 'post', path: '/tokens', summary: 'Create an API token (shown once)', tag: 'tokens', body: CreateToken, ok: { status: 201 } },
  { method: 'get', path: '/tokens', summary: 'List API tokens', tag: 'tokens' },
  { method: 'post', path: '/tokens/{id}/revoke', summary: 'Revoke an API token', tag: 'tokens' },
];

const schemaOf = (s: z.ZodType, io: 'input' | 'output' = 'input') => z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' });

export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (op.query) {
      const json = schemaOf(op.query) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(json.properties ?? {}))
        params.push({ name, in: 'query', required: json.required?.includes(name) ?? false, schema } as never);
    }
    const ok = op.ok ?? { status: 200 };
    const errors = Object.fromEntries(
      [...new Set(Object.values(HTTP_ERRORS).map((e) => e.status))]
        .filter((s) => s !== 422)
        .map((s) => [String(s), { $ref: `#/components/responses/Error${s}` }]),
    );
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      tags: [op.tag],
      operationId: `${op.method}${op.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9_]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.body) } } } } : {}),
      responses: {
        [String(ok.status)]:
          ok.status === 204 ? { description: 'Done' } : { description: ok.description ?? 'OK', content: { [ok.media ?? 'application/json']: { schema: {} } } },
        ...errors,
      },
      security: [{ bearer: [] }],
    };
  }
  const statuses = [...new Set(Object.values(HTTP_ERRORS).map((e) => e.status))].filter((s) => s !== 422);
  return {
    openapi: '3.1.0',
    info: { title: 'kinfer REST API', version, description: 'Test runs, inference jobs, the model registry and API tokens. Every route needs a bearer token.' },
    servers: [{ url: '/api/v1' }],
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A kinfer API token (kinfer_...) or an OIDC JWT' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: { enum: Object.keys(HTTP_ERRORS) },
            message: { type: 'string' },
            fields: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
      },
      responses: Object.fromEntries(
        statuses.map((s) => [
          `Error${s}`,
          {
            description: Object.entries(HTTP_ERRORS)
              .filter(([, e]) => e.status === s)
              .map(([code, e]) => `${code}: ${e.meaning}`)
              .join('\n\n'),
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
        ]),
      ),
    },
  };
}

/** A page that lists the document's operations, with no script or style from elsewhere. */
export function docsPage(doc: Record<string, unknown>): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  const rows = Object.entries(doc.paths as Record<string, Record<string, { summary: string; tags: string[] }>>)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(
        ([method, op]) =>
          `<tr><td>${op.tags[0]}</td><td><code>${method.toUpperCase()}</code></td><td><code>/api/v1${esc(path)}</code></td><td>${esc(op.summary)}</td></tr>`,
      ),
    )
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>kinfer REST API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}</style></head>
<body><h1>kinfer REST API</h1><p>The whole description: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1). Every route needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<table><thead><tr><th scope="col">Tag</th><th scope="col">Method</th><th scope="col">Path</th><th scope="col">What</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>`;
}
