// Request schemas of the REST API: what a client may send, with the field named on every refusal.
import { z } from 'zod';
import { InputConfig, JobStatus, parseStorageUri, TaskType, XaiMethod } from '../../contract/index.ts';

const storageUri = z.string().min(1).superRefine((uri, ctx) => {
  try {
    parseStorageUri(uri);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const xaiFields = {
  enable_xai: z.boolean().default(false),
  xai_method: XaiMethod.optional(),
};

/** XAI is part of the contract but not implemented by the runner yet: refuse rather than ignore. */
function refuseXai(body: { enable_xai: boolean }, ctx: z.RefinementCtx): void {
  if (body.enable_xai) ctx.addIssue({ code: 'custom', path: ['enable_xai'], message: 'XAI is not available in this version of the runner' });
}

export const CreateTestRun = z
  .object({
    checkpoint_path: storageUri,
    dataset_path: storageUri,
    dataset_split: z.string().regex(/^[\w.-]{1,64}$/, 'must be a folder name (letters, digits, _ . -)').default('test'),
    task_type: TaskType,
    training_job_id: z.string().min(1).max(255).optional(),
    name: z.string().min(1).max(255).optional(),
    ...xaiFields,
  })
  .strict()
  .superRefine(refuseXai);
export type CreateTestRun = z.output<typeof CreateTestRun>;

const INPUT_SHAPE = { single: 'image_path', batch: 'image_paths', dataset: 'dataset_path' } as const;

export const CreateInferenceJob = z
  .object({
    checkpoint_path: storageUri,
    task_type: TaskType,
    inference_type: z.enum(['single', 'batch', 'dataset']),
    input_config: InputConfig,
    name: z.string().min(1).max(255).optional(),
    ...xaiFields,
  })
  .strict()
  .superRefine((body, ctx) => {
    refuseXai(body, ctx);
    const key = INPUT_SHAPE[body.inference_type];
    if (!(key in body.input_config)) {
      ctx.addIssue({ code: 'custom', path: ['input_config'], message: `inference_type ${body.inference_type} needs input_config.${key}` });
      return;
    }
    const paths = 'image_path' in body.input_config ? [body.input_config.image_path] : 'image_paths' in body.input_config ? body.input_config.image_paths : [body.input_config.dataset_path];
    paths.forEach((p, i) => {
      try {
        parseStorageUri(p);
      } catch (err) {
        const path = key === 'image_paths' ? ['input_config', key, i] : ['input_config', key];
        ctx.addIssue({ code: 'custom', path, message: (err as Error).message });
      }
    });
  });
export type CreateInferenceJob = z.output<typeof CreateInferenceJob>;

const skipLimit = {
  skip: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
};

export const ListQuery = z.object({ ...skipLimit, status: JobStatus.optional() });

export const ImagesQuery = z.object({
  ...skipLimit,
  filter_correct: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
});

export const PageQuery = z.object(skipLimit);
