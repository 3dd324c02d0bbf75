// The reference implementation itself: pycocotools in a venv cached in ~/.cache/kinfer, fed the
// same ground truth and detections as kinfer's evaluator.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/local/cache-dir.ts';

export const PYCOCOTOOLS_VERSION = '2.0.10';

function python(): string {
  const venv = join(cacheDir(), 'py', `pycocotools-${PYCOCOTOOLS_VERSION}`);
  const bin = join(venv, 'bin', 'python');
  if (!existsSync(join(venv, '.ready'))) {
    execFileSync('python3', ['-m', 'venv', venv], { stdio: 'ignore' });
    execFileSync(bin, ['-m', 'pip', 'install', '--quiet', `pycocotools==${PYCOCOTOOLS_VERSION}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(join(venv, '.ready'), '');
  }
  return bin;
}

const SCRIPT = `
import json, sys, io, contextlib
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from pycocotools import mask as mask_utils
out = []
for case in json.load(open(sys.argv[1])):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = case['gt']
        gt.createIndex()
        # Ground truth given without an area gets its mask's, as COCO files store it.
        for a in gt.dataset['annotations']:
            if a.get('area') is None:
                a['area'] = float(mask_utils.area(gt.annToRLE(a)))
        dt = gt.loadRes(case['dt']) if case['dt'] else COCO()
        if not case['dt']:
            dt.dataset = {'images': case['gt']['images'], 'categories': case['gt']['categories'], 'annotations': []}
            dt.createIndex()
        e = COCOeval(gt, dt, case.get('iouType', 'bbox'))
        e.evaluate(); e.accumulate(); e.summarize()
    p, r = e.eval['precision'], e.eval['recall']
    def m(a):
        a = a[a > -1]
        return float(np.mean(a)) if a.size else -1.0
    per = [{'category_id': int(c), 'ap': m(p[:, :, k, 0, -1]), 'ap50': m(p[0, :, k, 0, -1]), 'recall': m(r[:, k, 0, -1]), 'pr50': [float(v) for v in p[0, :, k, 0, -1]]} for k, c in enumerate(e.params.catIds)]
    out.append({'stats': [float(s) for s in e.stats], 'perCategory': per})
print(json.dumps(out))
`;

export interface ReferenceCase {
  gt: { info: object; images: Array<{ id: number }>; categories: Array<{ id: number }>; annotations: unknown[] };
  dt: unknown[];
  iouType?: 'bbox' | 'segm' | 'keypoints';
}

export function pycocotoolsEvaluate(
  cases: ReferenceCase[],
): Array<{ stats: number[]; perCategory: Array<{ category_id: number; ap: number; ap50: number; recall: number; pr50: number[] }> }> {
  return runPython(SCRIPT, cases);
}

const MASK_SCRIPT = `
import json, sys
import numpy as np
from pycocotools import mask as M
case = json.load(open(sys.argv[1]))
h, w = case['height'], case['width']
def rle(m):
    return M.encode(np.asfortranarray(np.array(m, dtype=np.uint8).reshape(h, w)))
dts = [rle(m) for m in case['dts']]
gts = [rle(m) for m in case['gts']]
ious = M.iou(dts, gts, case['iscrowd'])
print(json.dumps({
    'strings': [r['counts'].decode() for r in dts + gts],
    'areas': [int(a) for a in M.area(dts + gts)],
    'boxes': M.toBbox(dts + gts).tolist(),
    'ious': np.asarray(ious).tolist(),
}))
`;

/** pycocotools.mask on row-major 0/1 masks of one size: encodings, areas, boxes, IoU (dts x gts). */
export function pycocotoolsMasks(input: { height: number; width: number; dts: number[][]; gts: number[][]; iscrowd: number[] }): {
  strings: string[];
  areas: number[];
  boxes: number[][];
  ious: number[][];
} {
  return runPython(MASK_SCRIPT, input);
}

const POLYGON_SCRIPT = `
import json, sys
from pycocotools import mask as M
case = json.load(open(sys.argv[1]))
out = []
for polygons in case['objects']:
    rle = M.merge(M.frPyObjects(polygons, case['height'], case['width']))
    out.append({'counts': rle['counts'].decode(), 'area': int(M.area(rle))})
print(json.dumps(out))
`;

/** pycocotools' annToRLE for polygon segmentations: frPyObjects, then merge. */
export function pycocotoolsPolygons(input: { height: number; width: number; objects: number[][][] }): Array<{ counts: string; area: number }> {
  return runPython(POLYGON_SCRIPT, input);
}

/** Runs a script with the pycocotools venv's Python on one JSON input file; parses its stdout. */
function runPython<T>(script: string, input: unknown): T {
  const dir = mkdtempSync(join(process.env.KINFER_TEST_DIR ?? '/tmp', 'pycoco-'));
  writeFileSync(join(dir, 'input.json'), JSON.stringify(input));
  writeFileSync(join(dir, 'script.py'), script);
  return JSON.parse(execFileSync(python(), [join(dir, 'script.py'), join(dir, 'input.json')], { maxBuffer: 256 * 2 ** 20 }).toString()) as T;
}
