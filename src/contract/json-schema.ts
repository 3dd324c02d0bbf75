// The contract as JSON Schema, for a runner written in another language.
import { z } from 'zod';
import { DonePayload, ImageResultsBatch, ProgressPayload, CallbackTokenClaims, CallbackReply } from './callbacks.ts';
import { ResultsFile } from './results-file.ts';
import { RunnerEnv } from './runner-env.ts';

const SCHEMAS = {
  'runner-env': RunnerEnv,
  'callback-progress': ProgressPayload,
  'callback-image-results': ImageResultsBatch,
  'callback-done': DonePayload,
  'callback-reply': CallbackReply,
  'callback-token-claims': CallbackTokenClaims,
  'results-file': ResultsFile,
} as const;

/** File name -> JSON text, as written to src/contract/json-schema/. */
export function contractJsonSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    // `input`: what a producer writes (environment strings, payloads before defaults apply).
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
    out[`${name}.schema.json`] = `${JSON.stringify({ $id: `https://kinfer.io/contract/v1/${name}.schema.json`, title: name, ...json }, null, 2)}\n`;
  }
  return out;
}
