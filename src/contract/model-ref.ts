// How a job or a prediction names a registered model: `name@version`, `name:stage`, or `name`
// (its production version, as a serving system's default).
import { z } from 'zod';

/** A registered version's place in its life: one `production` version per name at a time. */
export const STAGES = ['none', 'staging', 'production', 'archived'] as const;
export type Stage = (typeof STAGES)[number];

export const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
export const MODEL_VERSION = /^[\w.+-]{1,64}$/;

export type ModelRef = { name: string; version: string } | { name: string; stage: Stage };

export function parseModelRef(ref: string): ModelRef | string {
  const at = /^([^@:]+)@(.+)$/.exec(ref);
  const colon = /^([^@:]+):(.+)$/.exec(ref);
  const name = at?.[1] ?? colon?.[1] ?? ref;
  if (!MODEL_NAME.test(name)) return 'the model name must be lowercase letters, digits, . _ - (at most 128)';
  if (at) return MODEL_VERSION.test(at[2]!) ? { name, version: at[2]! } : 'the version must be letters, digits, . _ + - (at most 64)';
  if (colon) return (STAGES as readonly string[]).includes(colon[2]!) ? { name, stage: colon[2] as Stage } : `the stage must be one of ${STAGES.join(', ')}`;
  return { name, stage: 'production' };
}

export const ModelRefField = z
  .string()
  .max(200)
  .superRefine((ref, ctx) => {
    const parsed = parseModelRef(ref);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
  })
  .describe('A registered model: name@version, name:stage, or name (its production version).');
