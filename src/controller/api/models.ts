// /api/v1/models: the model registry. Registering reads the ONNX file as a job's admission does
// (it must exist, be allowed, load and fit its task); what it says (classes, input size) is kept.
// Reading needs any role, registering and changing a stage the user role, deleting an admin or
// the one who registered it.
import type { Router } from 'express';
import { z } from 'zod';
import { MODEL_NAME, MODEL_VERSION, StorageUriField, TaskType, type ModelDescription } from '../../contract/index.ts';
import { STAGES, type ModelStore } from '../../db/model-store.ts';
import { HttpError, validationError, type FieldProblem } from '../../http/errors.ts';
import { parseOr } from '../../http/plumbing.ts';
import { callerOf, requireRole } from './caller.ts';

const noNul = (s: string) => !s.includes('\u0000');
const Label = z.string().min(1).max(200).refine(noNul, 'must not contain NUL characters');

export const ServingFields = z
  .object({
    max_batch_size: z.number().int().min(1).max(256).optional().describe('Requests the predictor runs as one batch at most.'),
    max_queue_delay_ms: z.number().min(0).max(1000).optional().describe('How long a request waits for others to batch with.'),
  })
  .strict();

export const RegisterModel = z
  .object({
    name: z.string().regex(MODEL_NAME, 'must be lowercase letters, digits, . _ - (at most 128)'),
    version: z.string().regex(MODEL_VERSION, 'must be letters, digits, . _ + - (at most 64)'),
    task_type: TaskType,
    checkpoint_path: StorageUriField,
    stage: z.enum(STAGES).default('none'),
    tags: z.record(Label, Label).default({}),
    metrics: z.record(Label, z.number()).default({}),
    serving: ServingFields.default({}),
  })
  .strict();

export const UpdateModel = z
  .object({ stage: z.enum(STAGES).optional(), serving: ServingFields.optional() })
  .strict()
  .refine((b) => b.stage !== undefined || b.serving !== undefined, { message: 'set stage or serving', path: ['stage'] });

export const Traffic = z
  .object({
    split: z
      .record(z.string().regex(MODEL_VERSION, 'versions are letters, digits, . _ + - (at most 64)'), z.number().positive().max(1_000_000))
      .refine((s) => Object.keys(s).length >= 1 && Object.keys(s).length <= 16, 'name 1 to 16 versions'),
    sticky_header: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,128}$/, 'must be an HTTP header name')
      .transform((h) => h.toLowerCase())
      .optional()
      .describe('Requests with the same value of this header are answered by the same version.'),
  })
  .strict();
export const ListModels = z.object({ name: z.string().max(128).optional(), stage: z.enum(STAGES).optional() }).strict();

export interface ModelRouteDeps {
  models: ModelStore;
  inspect: (uri: string, task: TaskType) => Promise<{ problems: FieldProblem[]; model?: ModelDescription }>;
}

export function modelRoutes(router: Router, { models, inspect }: ModelRouteDeps): void {
  const entry = async (name: string, version: string) => {
    const found = await models.get(name, version);
    if (!found) throw new HttpError('not_found', `no registered model ${name}@${version}`);
    return found;
  };

  router.post('/models', async (req, res) => {
    requireRole(req, 'user', 'registering a model');
    const body = parseOr(RegisterModel, req.body, 'validation_error', 'model');
    const described = await inspect(body.checkpoint_path, body.task_type);
    if (!described.model) throw validationError(described.problems);
    const { classNames, inputSize, namedClasses } = described.model.metadata;
    const created = await models.register({
      ...body,
      metadata: { class_names: classNames, named_classes: namedClasses, input_size: inputSize, num_classes: classNames.length },
      created_by: callerOf(req).subject,
    });
    if (!created) throw new HttpError('conflict', `${body.name}@${body.version} is registered already`);
    res.status(201).location(`/api/v1/models/${created.name}/versions/${created.version}`).json(created);
  });

  router.get('/models', async (req, res) => {
    const q = parseOr(ListModels, req.query, 'validation_error', 'query');
    const items = await models.list(q);
    res.json({ total_count: items.length, items });
  });

  router.get('/models/:name/versions/:version', async (req, res) => {
    res.json(await entry(String(req.params.name), String(req.params.version)));
  });

  router.patch('/models/:name/versions/:version', async (req, res) => {
    requireRole(req, 'user', 'changing a model stage');
    const change = parseOr(UpdateModel, req.body, 'validation_error', 'model');
    await entry(String(req.params.name), String(req.params.version));
    res.json(await models.update(String(req.params.name), String(req.params.version), change));
  });

  // A/B split of the traffic that names a model without a version (`name`, `name:production`).
  router.get('/models/:name/traffic', async (req, res) => {
    const split = await models.traffic(String(req.params.name));
    if (!split) throw new HttpError('not_found', `${String(req.params.name)} has no traffic split (its production version answers)`);
    res.json(split);
  });

  router.put('/models/:name/traffic', async (req, res) => {
    requireRole(req, 'user', "splitting a model's traffic");
    const name = String(req.params.name);
    const body = parseOr(Traffic, req.body, 'validation_error', 'traffic');
    const registered = new Set((await models.list({ name })).map((m) => m.version));
    const unknown = Object.keys(body.split).filter((v) => !registered.has(v));
    if (unknown.length > 0) throw validationError(unknown.map((v) => ({ field: `split.${v}`, message: `no registered model ${name}@${v}` })));
    res.json(await models.setTraffic(name, body.split, body.sticky_header ?? null));
  });

  router.delete('/models/:name/traffic', async (req, res) => {
    requireRole(req, 'user', 'removing a traffic split');
    if (!(await models.clearTraffic(String(req.params.name)))) throw new HttpError('not_found', `${String(req.params.name)} has no traffic split`);
    res.status(204).end();
  });

  router.delete('/models/:name/versions/:version', async (req, res) => {
    const found = await entry(String(req.params.name), String(req.params.version));
    const caller = callerOf(req);
    if (caller.role !== 'admin' && found.created_by !== caller.subject) {
      throw new HttpError('forbidden', `${caller.subject} did not register ${found.name}@${found.version}; only its owner or an admin deletes it`);
    }
    await models.delete(found.name, found.version);
    res.status(204).end();
  });
}
