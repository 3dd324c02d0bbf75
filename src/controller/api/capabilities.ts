// GET /api/v1/capabilities: what this installation can do, for clients that adapt (a dashboard,
// a pipeline): tasks, explanation methods, the execution providers ONNX Runtime offers on this
// host and whether a GPU is visible here, the limits a request must respect, and versions.
import { existsSync, readFileSync } from 'node:fs';
import { INFERENCE_TYPES, LIMITS, TASK_TYPES, XAI_METHODS } from '../../contract/index.ts';

export interface CapabilitySettings {
  executor: string;
  oidc: boolean;
  allowedUris: string[];
  maxBodyBytes: number;
  submitsPerMinute: number;
  maxActiveJobsPerUser: number;
}

/** kinfer's version (package.json's), as the API and the CLI report it. */
export const packageVersion = (): string => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
};

export function capabilitiesOf(s: CapabilitySettings): () => Promise<Record<string, unknown>> {
  let cached: Record<string, unknown> | undefined;
  return async () => {
    if (cached) return cached;
    // Loaded on first use only: the controller itself never runs a model.
    const ort = (await import('onnxruntime-node')) as unknown as {
      listSupportedBackends?: () => Array<{ name: string; bundled: boolean }>;
      env: { versions: { node?: string } };
    };
    const backends = ort.listSupportedBackends?.() ?? [{ name: 'cpu', bundled: true }];
    cached = {
      task_types: TASK_TYPES,
      inference_types: INFERENCE_TYPES,
      xai_methods: XAI_METHODS,
      executor: s.executor,
      execution_providers: backends.map((b) => ({ name: b.name, bundled: b.bundled })),
      gpu_visible_here: existsSync('/dev/nvidiactl') || existsSync('/dev/nvidia0'),
      auth: { api_tokens: true, oidc: s.oidc },
      allowed_uris: s.allowedUris,
      limits: {
        max_body_bytes: s.maxBodyBytes,
        max_image_paths: LIMITS.imagePaths,
        max_xai_num_samples: LIMITS.numSamples,
        submits_per_minute: s.submitsPerMinute,
        max_active_jobs_per_user: s.maxActiveJobsPerUser,
      },
      versions: { kinfer: packageVersion(), node: process.version, onnxruntime: ort.env.versions.node ?? 'unknown' },
    };
    return cached;
  };
}
