// What a prediction request may carry, in the three forms a client sends: JSON (`image_url` or
// `image_base64`; `images: [...]` for a batch), the image itself as the body (Content-Type
// image/*, the other fields in the query), or multipart/form-data (file parts, the other fields
// as text parts), as KServe's and Ultralytics' HTTP inference APIs take them.
import busboy from 'busboy';
import type { Request } from 'express';
import { z } from 'zod';
import { ModelRefField, StorageUriField, TargetLayer, TaskType, XaiMethod } from '../contract/index.ts';
import { HttpError, validationError } from '../http/errors.ts';
import { parseOr } from '../http/plumbing.ts';

/** A number sent as text (a query or multipart field); text that is no number stays text, and is refused as such (not as "received NaN"). */
const num = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v), schema);

const modelFields = {
  model: ModelRefField.optional(),
  /** With `model` = a name: that version (as `name@version`). */
  version: z
    .string()
    .regex(/^[\w.+-]{1,64}$/, 'must be letters, digits, . _ + - (at most 64)')
    .optional(),
  checkpoint_path: StorageUriField.optional(),
  task_type: TaskType.optional(),
  conf: num(z.number().min(0).max(1)).optional(),
  iou: num(z.number().gt(0).max(1)).optional(),
  max_det: num(z.number().int().min(1).max(10_000)).optional(),
  /** An explanation of the prediction: a method, or true for the task's default. */
  xai: z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.union([z.boolean(), XaiMethod])).optional(),
  xai_target_layer: TargetLayer.optional(),
};

const ImageRef = z
  .object({ image_url: StorageUriField.optional(), image_base64: z.string().min(1).optional() })
  .strict()
  .refine((i) => (i.image_url === undefined) !== (i.image_base64 === undefined), 'set exactly one of image_url and image_base64');

export const PredictRequest = z.object({ ...modelFields, image_url: StorageUriField.optional(), image_base64: z.string().min(1).optional() }).strict();
export const BatchPredictRequest = z.object({ ...modelFields, images: z.array(ImageRef).min(1).optional() }).strict();

export type ModelFields = Pick<z.output<typeof PredictRequest>, keyof typeof modelFields>;

/** One image of a request: its bytes when sent, or where to read them; `field` names it in errors. */
export type ImageInput = { field: string; name: string } & ({ bytes: Uint8Array } | { uri: string });

export interface ParsedPredict {
  fields: ModelFields;
  images: ImageInput[];
}

const isMultipart = (req: Request) => (req.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data');

/**
 * Reads a multipart body: its files (at most `maxFiles`, each at most `maxBytes`) and text fields;
 * one file more is refused with `tooMany`, as the same request sent as JSON would be.
 */
function readMultipart(
  req: Request,
  maxBytes: number,
  maxFiles: number,
  tooMany: () => HttpError,
): Promise<{ fields: Record<string, string>; files: Array<{ field: string; name: string; bytes: Buffer }> }> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: maxBytes, files: maxFiles, fields: 32, fieldSize: 64 * 1024 } });
    } catch (err) {
      reject(new HttpError('bad_request', `not a multipart body: ${(err as Error).message}`));
      return;
    }
    const fields: Record<string, string> = {};
    const files: Array<{ field: string; name: string; bytes: Buffer }> = [];
    let failure: HttpError | undefined;
    parser.on('field', (name, value) => {
      fields[name] = value;
    });
    parser.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => {
        failure ??= new HttpError('payload_too_large', `the image ${info.filename ?? field} is over ${maxBytes} bytes`);
      });
      stream.on('end', () => files.push({ field, name: info.filename || field, bytes: Buffer.concat(chunks) }));
    });
    parser.on('filesLimit', () => {
      failure ??= tooMany();
    });
    parser.on('error', (err: Error) => reject(new HttpError('bad_request', `malformed multipart body: ${err.message}`)));
    parser.on('close', () => (failure ? reject(failure) : resolve({ fields, files })));
    req.pipe(parser);
  });
}

export const ONE_IMAGE = 'send exactly one image: the body (Content-Type image/*), a multipart file, image_url or image_base64';

/** A batch over the predictor's bound (KINFER_PREDICT_MAX_BATCH_IMAGES), whichever form it came in. */
const tooManyImages = (maxImages: number) =>
  validationError([{ field: 'images', message: `at most ${maxImages} images per request (KINFER_PREDICT_MAX_BATCH_IMAGES)` }]);

/** A single-image request in any of its forms. */
export async function parsePredict(req: Request, maxBytes: number): Promise<ParsedPredict> {
  if (isMultipart(req)) {
    const { fields, files } = await readMultipart(req, maxBytes, 1, () =>
      validationError([{ field: 'image', message: `${ONE_IMAGE} (several: /predict/batch)` }]),
    );
    const parsed = parseOr(PredictRequest, fields, 'validation_error', 'prediction request');
    const images: ImageInput[] = files.map((f) => ({ field: f.field, name: f.name, bytes: f.bytes }));
    if (parsed.image_url) images.push({ field: 'image_url', name: parsed.image_url, uri: parsed.image_url });
    if (parsed.image_base64) images.push({ field: 'image_base64', name: 'upload', bytes: Buffer.from(parsed.image_base64, 'base64') });
    return { fields: parsed, images };
  }
  if (Buffer.isBuffer(req.body)) {
    const parsed = parseOr(PredictRequest, req.query, 'validation_error', 'prediction request');
    if (parsed.image_url !== undefined || parsed.image_base64 !== undefined) throw validationError([{ field: 'image', message: ONE_IMAGE }]);
    return { fields: parsed, images: [{ field: '(body)', name: 'upload', bytes: req.body }] };
  }
  const parsed = parseOr(PredictRequest, req.body ?? {}, 'validation_error', 'prediction request');
  const images: ImageInput[] = [];
  if (parsed.image_url) images.push({ field: 'image_url', name: parsed.image_url, uri: parsed.image_url });
  if (parsed.image_base64) images.push({ field: 'image_base64', name: 'upload', bytes: Buffer.from(parsed.image_base64, 'base64') });
  return { fields: parsed, images };
}

/** A batch request: JSON `images: [...]`, or multipart with one file part per image. */
export async function parseBatch(req: Request, maxBytes: number, maxImages: number): Promise<ParsedPredict> {
  if (isMultipart(req)) {
    const { fields, files } = await readMultipart(req, maxBytes, maxImages, () => tooManyImages(maxImages));
    const parsed = parseOr(BatchPredictRequest.omit({ images: true }), fields, 'validation_error', 'prediction request');
    return { fields: parsed, images: files.map((f, i) => ({ field: `images.${i}`, name: f.name, bytes: f.bytes })) };
  }
  const parsed = parseOr(BatchPredictRequest, req.body ?? {}, 'validation_error', 'prediction request');
  const images = (parsed.images ?? []).map((i, n): ImageInput =>
    i.image_url
      ? { field: `images.${n}.image_url`, name: i.image_url, uri: i.image_url }
      : { field: `images.${n}.image_base64`, name: `upload-${n}`, bytes: Buffer.from(i.image_base64!, 'base64') },
  );
  if (images.length > maxImages) throw tooManyImages(maxImages);
  return { fields: parsed, images };
}
