// The runner's Node flags and process environment are defined once (RUNNER_NODE_FLAGS,
// RUNNER_PROCESS_ENV) and written out in the image's entrypoint, a shell script: the two must say the same.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUNNER_NODE_FLAGS, RUNNER_PROCESS_ENV } from '../../src/contract/index.ts';
import { REPO_ROOT } from '../../src/local/cluster/local-cluster.ts';

describe('the runner process', () => {
  it("is started by the image's entrypoint with RUNNER_PROCESS_ENV and RUNNER_NODE_FLAGS", () => {
    const script = readFileSync(join(REPO_ROOT, 'trainer-image', 'entrypoint.sh'), 'utf8');
    const line = script.split('\n').find((l) => l.trim().startsWith('runner)'));
    const env = Object.entries(RUNNER_PROCESS_ENV).map(([k, v]) => `${k}=${v}`);
    expect(line?.trim()).toBe(`runner) exec env ${env.join(' ')} node ${RUNNER_NODE_FLAGS.join(' ')} "$app/src/runner/main.ts" "$@" ;;`);
  });
});
