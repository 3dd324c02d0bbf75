// The Open Inference Protocol (KServe "V2", Triton's HTTP API), REST:
//   GET  /v2                                              server metadata
//   GET  /v2/health/live, /v2/health/ready                 200 or 503, {live|ready: bool}
//   GET  /v2/models/{name}[/versions/{v}]                  model metadata (inputs, outputs)
//   GET  /v2/models/{name}[/versions/{v}]/ready            {name, ready}
//   POST /v2/models/{name}[/versions/{v}]/infer            tensors in, tensors out
// Models are the registry's (a name alone: its traffic split, else its production version).
// Tensors are FP32 (what the served models take); `data` flat or nested in row-major order.
// Errors are `{"error": "..."}` with a 4xx, as the protocol says.
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { StoragePolicy } from '../controller/auth/storage-policy.ts';
import { HttpError } from '../http/errors.ts';
import { clientErrorMessage, fieldProblems, setRetryAfter } from '../http/plumbing.ts';
import type { InFlightLimit } from './in-flight.ts';
import type { Predictor } from './predictor.ts';
import type { ModelResolver, Resolved } from './resolver.ts';

export interface OipDeps {
  predictor: Predictor;
  resolver: ModelResolver;
  policy: StoragePolicy;
  authenticate: (req: Request, res: Response, next: NextFunction) => Promise<void>;
  ready: () => Promise<void>;
  /** The replica's bound on images held at once (a request's first dimension counts as its images). */
  inFlight: InFlightLimit;
}

type Nested = number | Nested[];
const TensorData: z.ZodType<Nested[]> = z.array(z.union([z.number(), z.lazy(() => TensorData)]));

const InferRequest = z.object({
  id: z.string().max(256).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  inputs: z
    .array(
      z.object({
        name: z.string().min(1).max(256),
        shape: z.array(z.number().int().min(0)).min(1).max(8),
        datatype: z.string(),
        parameters: z.record(z.string(), z.unknown()).optional(),
        data: TensorData,
      }),
    )
    .min(1),
  outputs: z.array(z.object({ name: z.string().min(1), parameters: z.record(z.string(), z.unknown()).optional() })).optional(),
});

class OipError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const flatten = (data: Nested[]): number[] => data.flat(Infinity as 1) as number[];

export function oipRoutes(app: express.Express, deps: OipDeps): void {
  app.get('/v2/health/live', (_req, res) => {
    res.json({ live: true });
  });
  app.get('/v2/health/ready', async (_req, res) => {
    const ready = await deps.ready().then(
      () => true,
      () => false,
    );
    res.status(ready ? 200 : 503).json({ ready });
  });
  app.get('/v2', (_req, res) => {
    res.json({ name: 'kinfer', version: process.env.npm_package_version ?? '0.1.0', extensions: [] });
  });

  const modelOf = async (req: Request): Promise<Resolved> => {
    const name = String(req.params.name);
    const ref = req.params.version !== undefined ? `${name}@${String(req.params.version)}` : name;
    const found = await deps.resolver.registered(ref, (h) => req.header(h));
    if (typeof found === 'string') throw new OipError(404, found);
    const refused = deps.policy.refusal(found.target.checkpointPath);
    if (refused) throw new OipError(400, refused);
    // This protocol sends the model's own float tensors: its session is the model as exported.
    return { ...found, target: { ...found.target, tensorInput: true } };
  };

  const loaded = async (resolved: Resolved) => {
    try {
      return await deps.predictor.model(resolved.target);
    } catch (err) {
      if ((err as { code?: string }).code) throw new OipError(400, `model ${resolved.modelKey} cannot be loaded: ${(err as Error).message}`);
      throw err;
    }
  };

  for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.use(base, (req, res, next) => void deps.authenticate(req, res, next));

    app.get(base, async (req, res) => {
      const resolved = await modelOf(req);
      const model = await loaded(resolved);
      res.json({
        name: resolved.target.name,
        versions: [resolved.target.version],
        platform: 'onnxruntime_onnx',
        inputs: model.info.inputNames.map((name, i) => ({ name, datatype: 'FP32', shape: i === 0 ? model.info.inputShape : [] })),
        outputs: model.info.outputNames.map((name, i) => ({ name, datatype: 'FP32', shape: model.info.outputShapes[i] ?? [] })),
        parameters: { task_type: resolved.target.task, class_names: model.metadata.classNames },
      });
    });

    app.get(`${base}/ready`, async (req, res) => {
      const resolved = await modelOf(req);
      const ready = await deps.predictor.model(resolved.target).then(
        () => true,
        () => false,
      );
      res.status(ready ? 200 : 503).json({ name: resolved.target.name, ready });
    });

    app.post(`${base}/infer`, express.json({ limit: 64 * 2 ** 20 }), async (req, res) => {
      const parsed = InferRequest.safeParse(req.body);
      if (!parsed.success) {
        const p = fieldProblems(parsed.error)[0]!;
        throw new OipError(400, `invalid inference request: ${p.field}: ${p.message}`);
      }
      const body = parsed.data;
      const resolved = await modelOf(req);
      const model = await loaded(resolved);
      const [inputName] = model.info.inputNames;
      if (body.inputs.length !== 1 || body.inputs[0]!.name !== inputName)
        throw new OipError(400, `the model takes one input, ${inputName}; got ${body.inputs.map((i) => i.name).join(', ')}`);
      const input = body.inputs[0]!;
      if (input.datatype !== 'FP32') throw new OipError(400, `input ${input.name}: datatype FP32 expected, got ${input.datatype}`);
      const expected = model.info.inputShape;
      const fits = input.shape.length === expected.length && input.shape.every((d, i) => expected[i] === -1 || expected[i] === d);
      if (!fits) throw new OipError(400, `input ${input.name}: shape [${input.shape.join(', ')}] does not fit the model's [${expected.join(', ')}] (-1: any)`);
      const values = flatten(input.data);
      const size = input.shape.reduce((a, b) => a * b, 1);
      if (values.length !== size) throw new OipError(400, `input ${input.name}: ${values.length} values for shape [${input.shape.join(', ')}] (${size})`);
      const wanted = body.outputs?.map((o) => o.name);
      const unknown = wanted?.filter((n) => !model.info.outputNames.includes(n)) ?? [];
      if (unknown.length > 0) throw new OipError(400, `unknown output ${unknown.join(', ')}; the model's outputs: ${model.info.outputNames.join(', ')}`);
      const { outputs } = await deps.inFlight.hold(Math.max(1, input.shape[0]!), () =>
        deps.predictor.infer(resolved.target, Float32Array.from(values), input.shape),
      );
      res.setHeader('x-model-version', resolved.target.version ?? '');
      res.json({
        model_name: resolved.target.name,
        model_version: resolved.target.version,
        ...(body.id !== undefined ? { id: body.id } : {}),
        outputs: outputs
          .filter((o) => !wanted || wanted.includes(o.name))
          .map((o) => ({ name: o.name, shape: o.dims, datatype: 'FP32', data: Array.from(new Float32Array(o.data)) })),
      });
    });
  }

  app.use('/v2', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (err instanceof OipError) res.status(err.status).json({ error: err.message });
    else if (err instanceof HttpError) {
      setRetryAfter(res, err);
      res.status(err.status).json({ error: err.message });
    } else if (typeof (err as { status?: number }).status === 'number' && (err as { status: number }).status < 500)
      res.status((err as { status: number }).status).json({ error: clientErrorMessage(err as Error) });
    else next(err);
  });
}
