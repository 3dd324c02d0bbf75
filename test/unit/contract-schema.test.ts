import { readFileSync } from 'node:fs';
import { contractJsonSchemas } from '../../src/contract/json-schema.ts';

describe('contract JSON Schema', () => {
  it.each(Object.entries(contractJsonSchemas()))('%s is committed and up to date (npm run contract:schema)', (file, text) => {
    expect(readFileSync(new URL(`../../src/contract/json-schema/${file}`, import.meta.url), 'utf8')).toBe(text);
  });

  it('describes the seed runner variables', () => {
    const env = JSON.parse(contractJsonSchemas()['runner-env.schema.json']!);
    for (const name of ['JOB_ID', 'TRACE_ID', 'INFERENCE_TYPE', 'BACKEND_BASE_URL', 'CALLBACK_TOKEN', 'TASK_TYPE', 'CHECKPOINT_PATH']) {
      expect(env.required).toContain(name);
    }
    expect(env.properties.INFERENCE_TYPE.enum).toEqual(['test_run', 'single', 'batch', 'dataset']);
  });
});
