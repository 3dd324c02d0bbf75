// The admission's rules that need no I/O: what a definition must say across its fields. Field
// names inside messages are spelled by the door (`spell`), so the kubectl door says
// `spec.input.imagePath` where the REST door says `input_config.image_path`, in the same sentence.
import type { FieldProblem } from '../../http/errors.ts';
import { INPUT_KEY, type JobDefinition } from '../job-mapping.ts';

export type Spell = (field: string) => string;

export const XAI_UNAVAILABLE = 'XAI is not available in this version of the runner';

export function definitionProblems(def: JobDefinition, spell: Spell): FieldProblem[] {
  const problems: FieldProblem[] = [];
  // XAI is part of the contract but not implemented by the runner yet: refuse rather than ignore.
  if (def.enable_xai) problems.push({ field: 'enable_xai', message: XAI_UNAVAILABLE });
  if (def.kind === 'test_run') {
    if (def.dataset_path === '') problems.push({ field: 'dataset_path', message: 'is required' });
    return problems;
  }
  const keys = Object.values(INPUT_KEY);
  const given = keys.filter((k) => def.input_config[k] !== undefined);
  const all = keys.map((k) => spell(`input_config.${k}`)).join(', ');
  if (def.inference_type === null) {
    problems.push({ field: 'input_config', message: `set exactly one of ${all}` });
  } else {
    const key = INPUT_KEY[def.inference_type];
    const others = given.filter((k) => k !== key);
    if (!given.includes(key)) problems.push({ field: 'input_config', message: `inference_type ${def.inference_type} needs ${spell(`input_config.${key}`)}` });
    else if (others.length > 0)
      problems.push({
        field: 'input_config',
        message: `inference_type ${def.inference_type} reads ${spell(`input_config.${key}`)} only; remove ${others.map((k) => spell(`input_config.${k}`)).join(', ')}`,
      });
  }
  return problems;
}
