// A job's per-image results are committed in parts, `{artifacts}/parts/{first image index}.ndjson`,
// each line one image's result and its evaluation record. A part is durable before its results
// go to the callback service, so every result the service holds is in a part. That is what makes
// a job resumable and shardable with metrics identical to one uninterrupted run:
// - a runner started again for the same job or shard reads its parts back, scores nothing twice,
//   and goes on after the last committed image;
// - the job's evaluation is always the fold of every part's records in image order (one shard or
//   many), done once, by the runner that finishes last;
// - images.jsonl is the parts' results concatenated, and the parts are removed after that.
// Memory stays flat: parts are read one at a time.
import { joinStorageUri, type ImageResult } from '../../contract/index.ts';
import type { ObjectStore } from '../io/object-store.ts';
import type { EvaluationRecord } from '../tasks/vision-task.ts';

export const PARTS_FOLDER = 'parts';

export interface PartLine {
  result: ImageResult;
  record: EvaluationRecord | null;
}

/** Ten digits: lexicographic order (S3's listing order) is image order. */
const PART_NAME = /\/(\d{10})\.ndjson$/;

export function partUri(artifactsUri: string, firstIndex: number): string {
  return joinStorageUri(artifactsUri, PARTS_FOLDER, `${String(firstIndex).padStart(10, '0')}.ndjson`);
}

/** `resultJson`: the result already as JSON (the reporter measures batches by it), not made again. */
export async function writePart(store: ObjectStore, artifactsUri: string, lines: Array<PartLine & { resultJson?: string }>): Promise<void> {
  // The same text as JSON.stringify({ result, record }).
  const line = (l: PartLine & { resultJson?: string }) => `{"result":${l.resultJson ?? JSON.stringify(l.result)},"record":${JSON.stringify(l.record)}}`;
  const body = `${lines.map(line).join('\n')}\n`;
  await store.write(partUri(artifactsUri, lines[0]!.result.image_index), body, 'application/x-ndjson');
}

/** The parts whose first image is in [from, to), in image order, each with its storage URI. */
export async function* readParts(
  store: ObjectStore,
  artifactsUri: string,
  from = 0,
  to = Number.POSITIVE_INFINITY,
): AsyncGenerator<{ uri: string; lines: PartLine[] }> {
  for await (const uri of store.list(joinStorageUri(artifactsUri, PARTS_FOLDER))) {
    const name = PART_NAME.exec(uri);
    if (!name) continue;
    const first = Number(name[1]);
    if (first < from || first >= to) continue;
    const text = (await store.read(uri)).toString('utf8');
    yield {
      uri,
      lines: text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as PartLine),
    };
  }
}

/** What a shard already committed: its counts, where to go on, and its last part (which may not have reached the callback service). */
export interface Committed {
  processed: number;
  failed: number;
  /** The first image index not committed yet. */
  next: number;
  lastPart: ImageResult[] | null;
}

export async function committedIn(store: ObjectStore, artifactsUri: string, from: number, to: number): Promise<Committed> {
  const committed: Committed = { processed: 0, failed: 0, next: from, lastPart: null };
  let last: PartLine[] | undefined;
  for await (const { lines } of readParts(store, artifactsUri, from, to)) {
    committed.processed += lines.length;
    committed.failed += lines.filter((l) => l.result.error !== null).length;
    last = lines;
  }
  if (last) {
    committed.next = last[last.length - 1]!.result.image_index + 1;
    committed.lastPart = last.map((l) => l.result);
  }
  return committed;
}

/** Images [from, to) of `total` in shard `index` of `count`: contiguous, in listing order, sizes differing by one at most. */
export function shardRange(total: number, index: number, count: number): { from: number; to: number } {
  return { from: Math.floor((total * index) / count), to: Math.floor((total * (index + 1)) / count) };
}
