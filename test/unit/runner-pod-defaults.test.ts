import { parseRunnerPodDefaults, placementFor } from '../../src/controller/kubernetes/runner-pod-defaults.ts';

const defaults = parseRunnerPodDefaults(
  JSON.stringify({
    resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '4Gi' } },
    nodeSelector: { pool: 'batch' },
    tolerations: [{ key: 'batch', operator: 'Exists', effect: 'NoSchedule' }],
    gpu: { nodeSelector: { 'kinfer.io/accelerator': 'nvidia-gpu' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] },
  }),
);

describe('runner pod defaults', () => {
  it('apply to a job that sets nothing', () => {
    expect(placementFor({}, defaults)).toEqual({
      gpu: false,
      resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '4Gi' } },
      nodeSelector: { pool: 'batch' },
      tolerations: [{ key: 'batch', operator: 'Exists', effect: 'NoSchedule' }],
    });
  });

  it('add the GPU placement to a job that asks for a GPU', () => {
    const p = placementFor({ resources: { limits: { 'nvidia.com/gpu': '1' } } }, defaults);
    expect(p.gpu).toBe(true);
    expect(p.resources).toEqual({ limits: { 'nvidia.com/gpu': '1' } });
    expect(p.nodeSelector).toEqual({ pool: 'batch', 'kinfer.io/accelerator': 'nvidia-gpu' });
    expect(p.tolerations).toEqual([
      { key: 'batch', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
  });

  it("give way to the job's own values", () => {
    const p = placementFor({ resources: { limits: { 'nvidia.com/gpu': '2' } }, nodeSelector: { gpu: 'a100' }, tolerations: [] }, defaults);
    expect(p).toEqual({ gpu: true, resources: { limits: { 'nvidia.com/gpu': '2' } }, nodeSelector: { gpu: 'a100' } });
  });

  it('count a GPU only when one is asked for', () => {
    expect(placementFor({ resources: { limits: { 'nvidia.com/gpu': '0' } } }, defaults).gpu).toBe(false);
    expect(placementFor({}, parseRunnerPodDefaults(undefined))).toEqual({ gpu: false });
  });

  it('refuse bad defaults, naming the field', () => {
    expect(() => parseRunnerPodDefaults('{"tolerations":[{"effect":"Sometimes"}]}')).toThrow(/tolerations\.0\.effect/);
    expect(() => parseRunnerPodDefaults('{"nodeSelecter":{}}')).toThrow(/nodeSelecter/);
    expect(() => parseRunnerPodDefaults('{nope')).toThrow(/not valid JSON/);
  });
});
