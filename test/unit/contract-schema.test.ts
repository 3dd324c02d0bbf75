// The contract as JSON Schema (committed and kept current by generated-files.test.ts) says what
// a runner in another language must read and write.
import { contractJsonSchemas } from '../../src/contract/json-schema.ts';

describe('contract JSON Schema', () => {
  it('describes the seed runner variables', () => {
    const env = JSON.parse(contractJsonSchemas()['runner-env.schema.json']!);
    for (const name of ['JOB_ID', 'TRACE_ID', 'INFERENCE_TYPE', 'BACKEND_BASE_URL', 'CALLBACK_TOKEN', 'TASK_TYPE', 'CHECKPOINT_PATH']) {
      expect(env.required).toContain(name);
    }
    expect(env.properties.INFERENCE_TYPE.enum).toEqual(['test_run', 'single', 'batch', 'dataset']);
  });
});
