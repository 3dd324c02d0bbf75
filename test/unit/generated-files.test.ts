// Everything generated has one source and is committed current: `npm run generate` writes these
// files; this test fails when one is stale (the chart's rendered manifests are checked by the
// chart test, which has helm).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedFiles } from '../../scripts/generate.ts';
import { renderErrorCatalog } from '../../src/http/errors.ts';
import { inferenceJobCrd } from '../../src/kube/crd.ts';
import { CHART_DIR, REPO_ROOT } from '../../src/local/cluster/local-cluster.ts';

describe('generated files', () => {
  it.each(Object.keys(generatedFiles()))('%s is committed and current (npm run generate)', (path) => {
    expect(readFileSync(join(REPO_ROOT, path), 'utf8')).toBe(generatedFiles()[path]);
  });

  it('ships the CRD once for the chart, as a template (no crds/ copy Helm would never upgrade)', () => {
    expect(existsSync(join(CHART_DIR, 'crds'))).toBe(false);
  });

  it("the README's error table is the catalog's", () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(`<!-- error-catalog -->\n${renderErrorCatalog()}\n<!-- /error-catalog -->`);
  });

  it("describes every field of the CRD for kubectl explain (an array item is its array's)", () => {
    type Schema = { description?: string; properties?: Record<string, Schema>; items?: Schema };
    const crd = inferenceJobCrd() as { spec: { versions: Array<{ schema: { openAPIV3Schema: Schema } }> } };
    const undescribed: string[] = [];
    const walk = (schema: Schema, path: string) => {
      if (!schema.description) undescribed.push(path);
      for (const [name, field] of Object.entries(schema.properties ?? {})) walk(field, `${path}.${name}`);
      for (const [name, field] of Object.entries(schema.items?.properties ?? {})) walk(field, `${path}[].${name}`);
    };
    for (const version of crd.spec.versions) for (const top of ['spec', 'status']) walk(version.schema.openAPIV3Schema.properties![top]!, top);
    expect(undescribed).toEqual([]);
  });
});
