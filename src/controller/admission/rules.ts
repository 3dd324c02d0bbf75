// The admission's rules that need no I/O: what a definition must say across its fields. Field
// names inside messages are spelled by the door (`spell`), so the kubectl door says
// `spec.input.imagePath` where the REST door says `input_config.image_path`, in the same sentence.
import { CLASS_SCORE_METHODS, defaultXaiMethod } from '../../contract/index.ts';
import type { FieldProblem } from '../../http/errors.ts';
import { INPUT_KEY, type JobDefinition } from '../job-mapping.ts';

export type Spell = (field: string) => string;

/** Whether the explanation asked for fits the job (the model's graph is checked against storage). */
function xaiProblems(def: JobDefinition, spell: Spell): FieldProblem[] {
  if (!def.enable_xai) return [];
  const problems: FieldProblem[] = [];
  const method = def.xai_method ?? defaultXaiMethod(def.task_type);
  const config = def.xai_config ?? {};
  if ((CLASS_SCORE_METHODS.includes(method) || method === 'attention') && def.task_type !== 'image_classification') {
    problems.push({
      field: 'xai_method',
      message: `${method} explains a class score: it fits image_classification, not ${def.task_type} (eigencam explains any task)`,
    });
  }
  if ((method === 'lime' || method === 'shap' || method === 'attention') && config.target_layer !== undefined) {
    problems.push({ field: 'xai_config.target_layer', message: `${method} reads no target layer; remove ${spell('xai_config.target_layer')}` });
  }
  if (def.kind !== 'test_run') {
    if (config.target === 'true') problems.push({ field: 'xai_config.target', message: 'true explains the labelled class: test runs only' });
    if (config.images === 'incorrect') problems.push({ field: 'xai_config.images', message: 'incorrect needs labels: test runs only' });
  }
  return problems;
}

export function definitionProblems(def: JobDefinition, spell: Spell): FieldProblem[] {
  const problems: FieldProblem[] = [...xaiProblems(def, spell)];
  // The model is a checkpoint or a registered model, never both.
  if (def.checkpoint_path === '' && def.model === null) problems.push({ field: 'checkpoint_path', message: `is required (or ${spell('model')})` });
  if (def.checkpoint_path !== '' && def.model !== null)
    problems.push({ field: 'model', message: `set ${spell('checkpoint_path')} or ${spell('model')}, not both` });
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
