// The fields of a job request, each defined once with its limits and its messages. The REST
// request schemas and the InferenceJob spec are both made of them, so both doors refuse the same
// values with the same words, and the CRD's OpenAPI schema (generated from the spec) carries the
// same limits for the API server to check. `.meta()` adds what only the CRD can use (a pattern, a
// CEL rule) where zod checks the same thing with a refinement.
import { z } from 'zod';
import { parseStorageUri } from './storage-layout.ts';
import { XaiImages, XaiTarget } from './xai.ts';

export const LIMITS = {
  /** Job names and training job ids, as their varchar(255) columns. */
  name: 255,
  /** Any storage URI. */
  uri: 2048,
  /** Images of one batch inference job. */
  imagePaths: 10_000,
  /** Dataset split folder name, as its varchar(64) column. */
  split: 64,
  targetLayer: 256,
  numSamples: 10_000,
  /** Shards of one job (runner processes or Pods side by side). */
  parallelism: 64,
  /** Restarts of a crashed runner (as a batch/v1 Job's backoffLimit). */
  backoffLimit: 100,
} as const;

export const MAX_PARALLELISM = LIMITS.parallelism;

/** No NUL characters: Postgres text columns cannot store them. */
const noNul = (s: string) => !s.includes('\u0000');
const NUL_MESSAGE = 'must not contain NUL characters';

/** `s3://bucket/key`, `file:///abs/path` or an absolute path. */
export const StorageUriField = z
  .string()
  .min(1)
  .max(LIMITS.uri)
  .refine(noNul, NUL_MESSAGE)
  .superRefine((uri, ctx) => {
    try {
      parseStorageUri(uri);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  })
  .meta({ pattern: '^(s3://|file:///|/)' });

/** A folder name directly under the dataset: letters, digits, `_ . -`, not `.` or `..`. */
export const DatasetSplit = z
  .string()
  .regex(/^[\w.-]{1,64}$/, 'must be a folder name (letters, digits, _ . -)')
  .refine((s) => s !== '.' && s !== '..', 'must be a folder name, not . or ..')
  .meta({
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    'x-kubernetes-validations': [{ rule: "self != '.' && self != '..'", message: 'must be a folder name, not . or ..' }],
  });

export const JobName = z.string().min(1).max(LIMITS.name).refine(noNul, NUL_MESSAGE);
export const TrainingJobId = z.string().min(1).max(LIMITS.name).refine(noNul, NUL_MESSAGE);
export const ImagePaths = z.array(StorageUriField).min(1).max(LIMITS.imagePaths);
export const TargetLayer = z.string().min(1).max(LIMITS.targetLayer).refine(noNul, NUL_MESSAGE);
export const NumSamples = z.number().int().min(1).max(LIMITS.numSamples);

/** A job split into this many shards, each a contiguous range of its image listing; metrics are over all of them. */
export const Parallelism = z.number().int().min(1).max(LIMITS.parallelism);
/** Restarts of a runner that crashed (killed, lost, out of memory); one that reported a failure is not restarted. */
export const BackoffLimit = z.number().int().min(0).max(LIMITS.backoffLimit);

/** `xai_config` of a request (the InferenceJob spec's `xai` block holds the same, camelCased). */
export const XaiConfigFields = {
  target_layer: TargetLayer.optional(),
  num_samples: NumSamples.optional(),
  images: XaiImages.optional(),
  target: XaiTarget.optional(),
};
