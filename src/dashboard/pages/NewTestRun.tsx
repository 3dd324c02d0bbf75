// `/test-runs/new`: a registered model or a checkpoint, a dataset path checked as it is typed
// (the submit-time checks, POST /validate), a split, the task read from the model. Filled in,
// it is one click: Create opens the new run's page.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.ts';
import { ModelSelect, type RegisteredModel } from '../components/ModelSelect.tsx';
import { navigate } from '../router.ts';

const TASKS = ['image_classification', 'object_detection', 'instance_segmentation', 'pose_estimation', 'semantic_segmentation'];
const SPLITS = ['test', 'val', 'validation', 'train'];
const TASK_OF: Record<string, string> = {
  classify: 'image_classification',
  detect: 'object_detection',
  segment: 'instance_segmentation',
  pose: 'pose_estimation',
};

interface Problem {
  field: string;
  message: string;
}

export function NewTestRun() {
  const [models, setModels] = useState<RegisteredModel[]>([]);
  const [form, setForm] = useState({ model: '', checkpoint_path: '', dataset_path: '', dataset_split: 'test', task_type: 'image_classification', name: '' });
  const [problems, setProblems] = useState<Problem[]>([]);
  const [checking, setChecking] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  useEffect(() => {
    void api('GET', '/models').then((r) => setModels(r.items));
  }, []);
  const request = () => ({
    ...(form.model ? { model: form.model } : { checkpoint_path: form.checkpoint_path }),
    dataset_path: form.dataset_path,
    dataset_split: form.dataset_split,
    task_type: form.task_type,
    ...(form.name ? { name: form.name } : {}),
  });
  // The submit-time checks as the user types (debounced).
  useEffect(() => {
    if (!form.dataset_path || (!form.model && !form.checkpoint_path)) {
      setProblems([]);
      return;
    }
    setChecking(true);
    const timer = setTimeout(async () => {
      try {
        const r = await api('POST', '/validate', { kind: 'test_run', request: request() });
        setProblems(r.problems);
        const task = TASK_OF[r.model?.task ?? ''] ?? (r.model?.task && TASKS.includes(r.model.task) ? r.model.task : undefined);
        if (task && task !== form.task_type) setForm((f) => ({ ...f, task_type: task }));
      } catch (err) {
        setProblems(err instanceof ApiError ? err.fields : [{ field: '', message: String(err) }]);
      } finally {
        setChecking(false);
      }
    }, 350);
    return () => clearTimeout(timer);
  }, [form.model, form.checkpoint_path, form.dataset_path, form.dataset_split, form.task_type]);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  const problemOf = (field: string) =>
    problems
      .filter((p) => p.field === field)
      .map((p) => p.message)
      .join('; ');
  const field = (name: string, id: string) => {
    const text = problemOf(name);
    return text ? (
      <span id={`${id}-problem`} class="problem">
        {text}
      </span>
    ) : null;
  };
  return (
    <main>
      <h1>New test run</h1>
      <form
        class="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          setSubmitError(null);
          try {
            const created = await api('POST', '/test-runs', request());
            navigate(`/test-runs/${created.id}`);
          } catch (err) {
            if (err instanceof ApiError) setProblems(err.fields);
            setSubmitError((err as Error).message);
          }
        }}
      >
        <ModelSelect
          label="Registered model"
          value={form.model}
          models={models}
          onChange={(model) => setForm({ ...form, model })}
          empty="— a checkpoint path instead —"
        />
        {!form.model && (
          <label>
            Checkpoint path
            <input
              name="checkpoint_path"
              value={form.checkpoint_path}
              onInput={set('checkpoint_path')}
              placeholder="s3://models/resnet18.onnx"
              aria-invalid={problemOf('checkpoint_path') ? 'true' : undefined}
              aria-describedby="checkpoint-problem"
            />
            {field('checkpoint_path', 'checkpoint')}
          </label>
        )}
        {field('model', 'model')}
        <label>
          Dataset path
          <input
            name="dataset_path"
            value={form.dataset_path}
            onInput={set('dataset_path')}
            placeholder="s3://datasets/flowers"
            required
            aria-invalid={problemOf('dataset_path') ? 'true' : undefined}
            aria-describedby="dataset-problem"
          />
          {field('dataset_path', 'dataset')}
        </label>
        <label>
          Split
          <select name="dataset_split" value={form.dataset_split} onChange={set('dataset_split')}>
            {SPLITS.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
          {field('dataset_split', 'split')}
        </label>
        <label>
          Task
          <select name="task_type" value={form.task_type} onChange={set('task_type')}>
            {TASKS.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
          {field('task_type', 'task')}
        </label>
        <label>
          Name (optional)
          <input name="name" value={form.name} onInput={set('name')} />
        </label>
        <p aria-live="polite">{checking ? 'Checking…' : problems.length === 0 && form.dataset_path ? 'Ready to run.' : ''}</p>
        <button type="submit">Create test run</button>
        {submitError && <p role="alert">{submitError}</p>}
      </form>
    </main>
  );
}
