// A job's artifacts through the API, so that a browser or a client never needs storage
// credentials: GET .../{id}/artifacts/{path} streams one (results.json, images.jsonl, a
// visualization, an explanation's overlay), and DELETE .../{id} removes a finished job: its
// artifacts first (a failure there leaves the job, to retry), then its rows.
import type { Request, Router } from 'express';
import sharp from 'sharp';
import { canonicalStorageUri, jobArtifactsUri, joinStorageUri, type JobKind } from '../../contract/index.ts';
import type { InferenceJob, TestRun } from '../../db/entities.ts';
import type { Job, JobStore } from '../../db/job-store.ts';
import { HttpError } from '../../http/errors.ts';
import { sendStream } from '../../http/send-stream.ts';
import type { StorageClient } from '../../storage/object-store.ts';
import { callerOf, requireRole } from './caller.ts';

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  jsonl: 'application/x-ndjson',
  csv: 'text/csv',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  npy: 'application/octet-stream',
  txt: 'text/plain; charset=utf-8',
};

export interface ArtifactRouteDeps {
  kind: JobKind;
  segment: string;
  found: (kind: JobKind, req: Request) => Promise<Job>;
  /** The tier removes what it keeps of the job first (its InferenceJob). */
  onDeleted: (kind: JobKind, job: Job) => Promise<void>;
  store: JobStore;
  storage: StorageClient;
  rootUri: string;
}

export function artifactRoutes(router: Router, d: ArtifactRouteDeps): void {
  router.get(`/${d.segment}/:id/artifacts/*path`, async (req, res) => {
    const job = await d.found(d.kind, req);
    const segments = ([] as string[]).concat((req.params as { path?: string | string[] }).path ?? []).flatMap((p) => p.split('/'));
    if (segments.length === 0 || segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\\')))
      throw new HttpError('not_found', 'no such artifact');
    const uri = joinStorageUri(jobArtifactsUri(d.rootUri, d.kind, job.id), ...segments);
    const stat = await d.storage.stat(uri);
    if (!stat) throw new HttpError('not_found', `no artifact ${segments.join('/')}`);
    const ext = segments.at(-1)!.split('.').at(-1)!.toLowerCase();
    res
      .status(200)
      .type(CONTENT_TYPES[ext] ?? 'application/octet-stream')
      .setHeader('content-length', String(stat.size));
    await sendStream(res, d.storage.stream(uri));
  });

  // A small JPEG of an image the job read (from its dataset or list), for tables of results.
  router.get(`/${d.segment}/:id/images/:index/thumbnail`, async (req, res) => {
    const job = await d.found(d.kind, req);
    const index = Number(req.params.index);
    const path = Number.isInteger(index) && index >= 0 ? await d.store.imagePath(d.kind, job.id, index) : null;
    if (path === null) throw new HttpError('not_found', `no image ${String(req.params.index)} in this job`);
    const uri = sourceOf(job, d.kind, path);
    let thumbnail: Buffer;
    try {
      thumbnail = await sharp(await d.storage.read(uri), { failOn: 'error' })
        .rotate()
        .resize(160, 160, { fit: 'inside' })
        .jpeg({ quality: 80 })
        .toBuffer();
    } catch (err) {
      throw new HttpError('not_found', `the image cannot be shown: ${(err as Error).message.split('\n')[0]}`);
    }
    res.status(200).type('image/jpeg').setHeader('cache-control', 'private, max-age=3600');
    res.end(thumbnail);
  });

  router.delete(`/${d.segment}/:id`, async (req, res) => {
    const job = await d.found(d.kind, req);
    requireRole(req, 'user', 'deleting a job');
    const caller = callerOf(req);
    if (caller.role !== 'admin' && job.created_by !== caller.subject)
      throw new HttpError('forbidden', `${caller.subject} did not submit this job; only its owner or an admin deletes it`);
    if (job.status === 'pending' || job.status === 'running')
      throw new HttpError('conflict', `cannot delete a ${job.status} job: cancel it first`, { status: job.status });
    try {
      await d.onDeleted(d.kind, job);
      await d.storage.deletePrefix(jobArtifactsUri(d.rootUri, d.kind, job.id));
    } catch (err) {
      throw new HttpError('storage_unavailable', `the job's artifacts or resources could not be deleted (the job is kept; retry): ${(err as Error).message}`);
    }
    if (!(await d.store.deleteFinished(d.kind, job.id))) throw new HttpError('conflict', 'the job changed meanwhile; retry');
    req.log.info({ job_id: job.id }, 'job deleted');
    res.status(204).end();
  });
}

/** Where a job read an image: a test run's dataset split, an inference job's folder, or the listed URI itself. */
function sourceOf(job: Job, kind: JobKind, imagePath: string): string {
  if (kind === 'test_run') {
    const run = job as TestRun;
    return joinStorageUri(canonicalStorageUri(run.dataset_path), run.dataset_split, ...imagePath.split('/'));
  }
  const input = (job as InferenceJob).input_config;
  return 'dataset_path' in input ? joinStorageUri(canonicalStorageUri(input.dataset_path), ...imagePath.split('/')) : imagePath;
}
