// Where a job's artifacts live, and what a storage URI means. Part of the runner contract: a runner
// in any language writes to these keys and the services read them back.
import { posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { JobKind } from './jobs.ts';

export type StorageLocation = { scheme: 's3'; bucket: string; key: string } | { scheme: 'file'; path: string };

export class InvalidStorageUriError extends Error {
  readonly code = 'INVALID_STORAGE_URI';
  readonly uri: string;
  constructor(uri: string, reason: string) {
    super(`invalid storage location "${uri}": ${reason}`);
    this.uri = uri;
    this.name = 'InvalidStorageUriError';
  }
}

/**
 * `s3://bucket/key`, `file:///abs/path`, or a plain absolute path (a local file). Relative paths
 * are refused: a job runs in another process and directory than the one that submitted it.
 */
export function parseStorageUri(uri: string): StorageLocation {
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new InvalidStorageUriError(uri, 'bucket name must be 3-63 lowercase letters, digits, dots or hyphens');
    }
    const key = slash === -1 ? '' : rest.slice(slash + 1);
    // S3 keys are plain names, but `..` in one reads as a climb to people and to other tools.
    if (key.split('/').some((segment) => segment === '.' || segment === '..')) {
      throw new InvalidStorageUriError(uri, 'the key must not have `.` or `..` segments');
    }
    if (!key.isWellFormed() || new TextEncoder().encode(key).length > 1024)
      throw new InvalidStorageUriError(uri, 'the key must be valid UTF-8 of at most 1024 bytes');
    return { scheme: 's3', bucket, key };
  }
  if (uri.startsWith('file://')) {
    if (!uri.startsWith('file:///')) throw new InvalidStorageUriError(uri, 'file:// URIs need an absolute path (file:///...)');
    // Checked as written: URL parsing would resolve `..` silently.
    let written: string;
    try {
      written = decodeURIComponent(uri.slice('file://'.length).split(/[?#]/, 1)[0]!);
    } catch {
      throw new InvalidStorageUriError(uri, 'the path is not valid percent-encoding');
    }
    confinedPath(uri, written);
    return { scheme: 'file', path: confinedPath(uri, fileURLToPath(uri)) };
  }
  if (uri.startsWith('/')) return { scheme: 'file', path: confinedPath(uri, uri) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new InvalidStorageUriError(uri, 'only s3:// and file:// are supported');
  }
  throw new InvalidStorageUriError(uri, 'use s3://bucket/key, file:///absolute/path or an absolute path');
}

/**
 * A local path in its one spelling: no `.` or `..` segments, no empty segments, not the root. A
 * path that names the same folder two ways could slip past a rule about folders, and `/` as a
 * dataset lists the whole host.
 */
function confinedPath(uri: string, path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, '') : path;
  if (trimmed === '/') throw new InvalidStorageUriError(uri, 'the filesystem root is not a storage location');
  if (!path.isWellFormed()) throw new InvalidStorageUriError(uri, 'the path must be valid Unicode');
  if (posix.normalize(trimmed) !== trimmed) throw new InvalidStorageUriError(uri, 'the path must be normalised (no `.`, `..` or empty segments)');
  return path;
}

export function formatStorageUri(loc: StorageLocation): string {
  return loc.scheme === 's3' ? `s3://${loc.bucket}/${loc.key}` : pathToFileURL(loc.path).href;
}

/** The one spelling of a location: plain paths become file:// URIs, trailing slashes go. */
export function canonicalStorageUri(uri: string): string {
  return formatStorageUri(parseStorageUri(uri)).replace(/\/+$/, '');
}

/** Appends path segments to a storage URI, with exactly one slash between parts. */
export function joinStorageUri(base: string, ...parts: string[]): string {
  const trimmed = base.replace(/\/+$/, '');
  return [trimmed, ...parts.map((p) => p.replace(/^\/+|\/+$/g, ''))].filter((p) => p !== '').join('/');
}

const KIND_PREFIX: Record<JobKind, string> = { test_run: 'test-runs', inference_job: 'inference-jobs' };

/** `{artifacts}/test-runs/{id}` or `{artifacts}/inference-jobs/{id}`. */
export function jobArtifactsUri(artifactsUri: string, kind: JobKind, jobId: string): string {
  return joinStorageUri(artifactsUri, KIND_PREFIX[kind], jobId);
}

export const ARTIFACT_NAMES = {
  results: 'results.json',
  /** One JSON object a line, one line an image: streamed, so memory does not grow with the dataset. */
  images: 'images.jsonl',
  /** Pictures of each image's predictions, `{index}.jpg`. */
  visualizations: 'visualizations',
  /** Semantic segmentation: predicted class-id PNGs, `{index}.png`. */
  masks: 'masks',
  xai: 'xai',
} as const;
