// Job results in the formats other tools read: COCO results JSON (what pycocotools' loadRes and
// every COCO leaderboard take), CSV (one row per object, or per image for classification and
// semantic segmentation) and JSON (the per-image records as the API shows them). Rows are
// streamed from the database a page at a time, so an export of any size stays small in memory.
import { z } from 'zod';
import { OBJECT_TASK_TYPES, type TaskType } from '../../contract/index.ts';
import type { InferenceResult, TestImageResult } from '../../db/entities.ts';
import { HttpError } from '../../http/errors.ts';

export const EXPORT_FORMATS = ['coco', 'csv', 'json'] as const;
export const ExportQuery = z.object({ format: z.enum(EXPORT_FORMATS).default('json') });
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

type Row = TestImageResult | InferenceResult;

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = { coco: 'application/json', csv: 'text/csv; charset=utf-8', json: 'application/json' };

export function checkExportable(format: ExportFormat, task: TaskType): void {
  if (format === 'coco' && !OBJECT_TASK_TYPES.includes(task)) {
    throw new HttpError('validation_error', `format: COCO results hold objects; a job of task ${task} exports as csv or json`, {
      fields: [{ field: 'format', message: `coco needs an object task (${OBJECT_TASK_TYPES.join(', ')})` }],
    });
  }
}

/** RFC 4180: quote a field holding a comma, quote or line break; double its quotes. */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
const csvLine = (values: unknown[]) => `${values.map(csvField).join(',')}\r\n`;

const CSV_COLUMNS = {
  objects: [
    'image_index',
    'image_path',
    'image_id',
    'object_index',
    'class_id',
    'class_name',
    'category_id',
    'confidence',
    'x1',
    'y1',
    'x2',
    'y2',
    'match_iou',
    'keypoints',
    'image_correct',
    'error',
  ],
  classification: ['image_index', 'image_path', 'predicted_class_id', 'predicted_label', 'confidence', 'true_class_id', 'true_label', 'is_correct', 'error'],
  semantic: ['image_index', 'image_path', 'mask_path', 'predicted_class_id', 'predicted_label', 'pixel_accuracy', 'mean_iou', 'is_correct', 'error'],
} as const;

/** The export as chunks of text, in order. */
export async function* exportChunks(format: ExportFormat, task: TaskType, rows: AsyncIterable<Row>): AsyncGenerator<string> {
  const objects = OBJECT_TASK_TYPES.includes(task);
  if (format === 'csv') {
    const kind = objects ? 'objects' : task === 'semantic_segmentation' ? 'semantic' : 'classification';
    yield csvLine([...CSV_COLUMNS[kind]]);
    for await (const r of rows) {
      const correct = 'is_correct' in r ? r.is_correct : null;
      if (kind === 'classification') {
        yield csvLine([
          r.image_index,
          r.image_path,
          r.predicted_class_id,
          r.predicted_label,
          r.confidence,
          'true_class_id' in r ? r.true_class_id : null,
          'true_label' in r ? r.true_label : null,
          correct,
          r.error_message,
        ]);
      } else if (kind === 'semantic') {
        yield csvLine([
          r.image_index,
          r.image_path,
          r.mask_path,
          r.predicted_class_id,
          r.predicted_label,
          r.image_metrics?.pixel_accuracy,
          r.image_metrics?.mean_iou,
          correct,
          r.error_message,
        ]);
      } else if (!r.detections || r.detections.length === 0) {
        // An image without objects (or unreadable) still gets its line.
        yield csvLine([r.image_index, r.image_path, r.image_id, null, null, null, null, null, null, null, null, null, null, null, correct, r.error_message]);
      } else {
        for (const [i, d] of r.detections.entries()) {
          yield csvLine([
            r.image_index,
            r.image_path,
            r.image_id,
            i,
            d.class_id,
            d.class_name,
            d.category_id,
            d.confidence,
            ...d.bbox,
            d.match_iou,
            d.keypoints?.join(' '),
            correct,
            null,
          ]);
        }
      }
    }
    return;
  }
  yield '[';
  let first = true;
  const item = (v: unknown) => {
    const text = `${first ? '\n' : ',\n'}${JSON.stringify(v)}`;
    first = false;
    return text;
  };
  for await (const r of rows) {
    if (format === 'json') {
      yield item(r);
      continue;
    }
    for (const d of r.detections ?? []) {
      const [x1, y1, x2, y2] = d.bbox;
      yield item({
        image_id: r.image_id,
        category_id: d.category_id,
        bbox: [x1, y1, x2 - x1, y2 - y1],
        score: d.confidence,
        ...(d.mask ? { segmentation: d.mask } : {}),
        ...(d.keypoints ? { keypoints: d.keypoints } : {}),
      });
    }
  }
  yield first ? ']\n' : '\n]\n';
}
