// COCO annotation files (`annotations.json`): validated at the edge, then turned into the ground
// truth the evaluator takes. Segmentations come as polygons, uncompressed RLE or compressed RLE,
// and become RLE the way pycocotools' annToRLE makes them.
import { z } from 'zod';
import type { CocoGroundTruth } from '../detection/coco-eval.ts';
import { rleFromPolygons } from '../segmentation/polygon.ts';
import { rleFromString, type Rle } from '../segmentation/rle.ts';

const num = z.number().finite();

const Segmentation = z.union([
  z.array(z.array(num)),
  z.object({ size: z.tuple([z.number().int(), z.number().int()]), counts: z.union([z.string(), z.array(z.number().int().nonnegative())]) }),
]);

export const CocoAnnotation = z.object({
  id: z.number().int(),
  image_id: z.number().int(),
  category_id: z.number().int(),
  bbox: z.tuple([num, num, num, num]),
  area: num.optional(),
  iscrowd: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
  segmentation: Segmentation.optional(),
  keypoints: z.array(num).optional(),
  num_keypoints: z.number().int().optional(),
});
export type CocoAnnotation = z.infer<typeof CocoAnnotation>;

export const CocoImage = z.object({
  id: z.number().int().nonnegative(),
  file_name: z.string().min(1),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});
export type CocoImage = z.infer<typeof CocoImage>;

export const CocoAnnotationFile = z.object({
  images: z.array(CocoImage),
  annotations: z.array(CocoAnnotation).default([]),
  categories: z.array(z.object({ id: z.number().int(), name: z.string() })).min(1),
});
export type CocoAnnotationFile = z.infer<typeof CocoAnnotationFile>;

export function parseCocoAnnotationFile(raw: string, uri: string): CocoAnnotationFile {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${uri} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = CocoAnnotationFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${uri} is not a COCO annotation file: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

function segmentationRle(segm: NonNullable<CocoAnnotation['segmentation']>, h: number, w: number): Rle {
  if (Array.isArray(segm)) return rleFromPolygons(segm, h, w);
  if (typeof segm.counts === 'string') return rleFromString(segm.counts, segm.size[0], segm.size[1]);
  return { size: segm.size, counts: segm.counts };
}

/** One image's annotations as evaluator ground truth (masks only when the evaluation needs them). */
export function cocoGroundTruth(anns: CocoAnnotation[], image: CocoImage, withMasks: boolean): CocoGroundTruth[] {
  return anns.map((a) => {
    const segmentation = withMasks && a.segmentation ? segmentationRle(a.segmentation, image.height, image.width) : undefined;
    return {
      id: a.id,
      image_id: a.image_id,
      category_id: a.category_id,
      bbox: a.bbox,
      area: a.area ?? a.bbox[2] * a.bbox[3],
      iscrowd: a.iscrowd === 1 || a.iscrowd === true ? 1 : 0,
      ...(a.keypoints
        ? { keypoints: a.keypoints, num_keypoints: a.num_keypoints ?? a.keypoints.filter((_, i) => i % 3 === 2 && a.keypoints![i]! > 0).length }
        : {}),
      ...(segmentation ? { segmentation } : {}),
    };
  });
}
