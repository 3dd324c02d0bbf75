// Credentials per S3 bucket: a bucket may live on another endpoint, or belong to a team whose
// keys no other job should hold. The controller is given the map (KINFER_S3_BUCKET_CREDENTIALS);
// each runner gets only the entries of the buckets its job reads or writes (S3_BUCKET_CREDENTIALS,
// in its Secret). Buckets without an entry use the default AWS_* credentials.
import { z } from 'zod';

export const BucketCredentials = z
  .object({
    access_key_id: z.string().min(1),
    secret_access_key: z.string().min(1),
    /** Another S3 endpoint for this bucket (path-style). */
    endpoint: z.url().optional(),
    region: z.string().min(1).optional(),
  })
  .strict();
export type BucketCredentials = z.infer<typeof BucketCredentials>;

export const BucketCredentialsMap = z.record(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a bucket name'), BucketCredentials);
export type BucketCredentialsMap = z.infer<typeof BucketCredentialsMap>;

/** Parses the JSON map, naming what is wrong (without echoing any secret). */
export function parseBucketCredentials(raw: string | undefined, name: string): BucketCredentialsMap {
  if (raw === undefined || raw.trim() === '') return {};
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error(`${name} is not valid JSON`);
  }
  const parsed = BucketCredentialsMap.safeParse(json);
  if (!parsed.success) throw new Error(`${name} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** The settings of one bucket's S3 client: its own entry, else the defaults. */
export function s3SettingsFor<
  T extends { endpoint?: string | undefined; region: string; accessKeyId?: string | undefined; secretAccessKey?: string | undefined },
>(defaults: T, perBucket: BucketCredentialsMap, bucket: string): T {
  const own = perBucket[bucket];
  if (!own) return defaults;
  return {
    ...defaults,
    endpoint: own.endpoint ?? defaults.endpoint,
    region: own.region ?? defaults.region,
    accessKeyId: own.access_key_id,
    secretAccessKey: own.secret_access_key,
  };
}

/** Where a process's S3 clients connect: the defaults, and the buckets with their own endpoint or keys. */
export interface S3ClientSettings {
  endpoint?: string | undefined;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  buckets?: BucketCredentialsMap | undefined;
}
