// The registry's models as a select (the new-run and predict pages); '' = a checkpoint path instead.
export interface RegisteredModel {
  name: string;
  version: string;
  stage: string;
  task_type: string;
}

export function ModelSelect(p: { label: string; value: string; models: RegisteredModel[]; onChange: (value: string) => void; empty: string }) {
  return (
    <label>
      {p.label}
      <select value={p.value} onChange={(e) => p.onChange(e.currentTarget.value)}>
        <option value="">{p.empty}</option>
        {p.models.map((m) => (
          <option value={`${m.name}@${m.version}`}>
            {m.name}@{m.version} ({m.stage}, {m.task_type})
          </option>
        ))}
      </select>
    </label>
  );
}
