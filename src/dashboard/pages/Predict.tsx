// `/predict`: drop (or browse) an image, choose a registered model or a checkpoint, and see the
// prediction drawn over it: top-5 bars, boxes, masks, keypoint skeletons, a semantic mask, an
// explanation; the timings; the annotated image to download. Through the controller's origin
// (it forwards /api/v1/predict to the predictor).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api.ts';
import { drawDetections, type Detection } from '../components/draw.ts';
import { pct } from '../components/format.ts';
import { ModelSelect, type RegisteredModel } from '../components/ModelSelect.tsx';

const TASKS = ['image_classification', 'object_detection', 'instance_segmentation', 'pose_estimation', 'semantic_segmentation'];

export function Predict() {
  const [models, setModels] = useState<RegisteredModel[]>([]);
  const [choice, setChoice] = useState({ model: '', checkpoint_path: '', task_type: 'image_classification', xai: false });
  const [file, setFile] = useState<File | null>(null);
  const [result, setResult] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    void api('GET', '/models').then((r) => {
      setModels(r.items);
      const production = r.items.find((m: { stage: string }) => m.stage === 'production') ?? r.items[0];
      if (production) setChoice((c) => ({ ...c, model: `${production.name}@${production.version}` }));
    });
  }, []);

  const predict = async (f: File) => {
    setFile(f);
    setError(null);
    setResult(null);
    setBusy(true);
    const form = new FormData();
    if (choice.model) form.set('model', choice.model);
    else {
      form.set('checkpoint_path', choice.checkpoint_path);
      form.set('task_type', choice.task_type);
    }
    if (choice.xai) form.set('xai', 'true');
    form.append('image', f, f.name);
    const started = performance.now();
    try {
      const r = await api('POST', '/predict', form);
      setResult({ ...r, round_trip_ms: performance.now() - started });
    } catch (err) {
      setError(err instanceof ApiError && err.fields.length > 0 ? err.fields.map((p) => `${p.field}: ${p.message}`).join('; ') : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  // The image, and what was found drawn over it.
  useEffect(() => {
    if (!file || !result || !canvas.current) return;
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = async () => {
      const c = canvas.current!;
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      if (result.detections) drawDetections(ctx, result.detections as Detection[]);
      if (result.mask_png_base64) {
        const mask = new Image();
        mask.src = `data:image/png;base64,${result.mask_png_base64}`;
        await mask.decode();
        ctx.globalAlpha = 0.5;
        ctx.globalCompositeOperation = 'multiply';
        ctx.drawImage(mask, 0, 0, c.width, c.height);
        ctx.globalAlpha = 1;
        ctx.globalCompositeOperation = 'source-over';
      }
      c.dataset.rendered = 'true';
      URL.revokeObjectURL(url);
    };
    img.src = url;
  }, [file, result]);

  return (
    <main>
      <h1>Predict</h1>
      <form class="stack" onSubmit={(e) => e.preventDefault()}>
        <ModelSelect label="Model" value={choice.model} models={models} onChange={(model) => setChoice({ ...choice, model })} empty="— a checkpoint path —" />
        {!choice.model && (
          <>
            <label>
              Checkpoint path
              <input
                value={choice.checkpoint_path}
                onInput={(e) => setChoice({ ...choice, checkpoint_path: e.currentTarget.value })}
                placeholder="s3://models/model.onnx"
              />
            </label>
            <label>
              Task
              <select value={choice.task_type} onChange={(e) => setChoice({ ...choice, task_type: e.currentTarget.value })}>
                {TASKS.map((t) => (
                  <option value={t}>{t}</option>
                ))}
              </select>
            </label>
          </>
        )}
        <label class="inline">
          <input type="checkbox" checked={choice.xai} onChange={(e) => setChoice({ ...choice, xai: e.currentTarget.checked })} /> Explain (heat map)
        </label>
        <div
          class={`dropzone${dragging ? ' over' : ''}`}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={(e) => {
            e.preventDefault();
            setDragging(false);
            const f = e.dataTransfer?.files[0];
            if (f) void predict(f);
          }}
        >
          <p>Drop an image here, or</p>
          <label>
            Choose an image
            <input type="file" accept="image/*" onChange={(e) => e.currentTarget.files?.[0] && void predict(e.currentTarget.files[0])} />
          </label>
        </div>
      </form>
      {busy && <p aria-busy="true">Predicting…</p>}
      {error && <p role="alert">{error}</p>}
      {result && (
        <section aria-labelledby="prediction" data-testid="prediction">
          <h2 id="prediction">
            {result.predicted_label ?? (result.detections ? `${result.detections.length} objects` : 'Prediction')}
            {typeof result.confidence === 'number' && <small> {pct(result.confidence)}</small>}
          </h2>
          <p class="meta">
            {result.model}
            {result.model_version && ` (version ${result.model_version})`} · inference {result.inference_time_ms.toFixed(1)} ms · preprocessing{' '}
            {result.preprocess_ms.toFixed(1)} ms · round trip {result.round_trip_ms.toFixed(0)} ms{result.cached && ' · cached'}
          </p>
          {result.predictions && (
            <ol class="bars" aria-label="Top classes">
              {result.predictions.slice(0, 5).map((p: { class_name: string; confidence: number }) => (
                <li>
                  <span class="label">{p.class_name}</span>
                  <span class="bar" style={{ width: `${(100 * p.confidence).toFixed(1)}%` }} />
                  <span class="value">{pct(p.confidence)}</span>
                </li>
              ))}
            </ol>
          )}
          <canvas ref={canvas} class="annotated" aria-label="The image with the prediction drawn over it" />
          {result.xai?.heatmap_jpeg_base64 && (
            <img src={`data:image/jpeg;base64,${result.xai.heatmap_jpeg_base64}`} alt={`Explanation (${result.xai.method})`} class="annotated" />
          )}
          <p>
            <button
              type="button"
              onClick={() =>
                canvas.current?.toBlob((blob) => {
                  if (!blob) return;
                  const a = document.createElement('a');
                  a.href = URL.createObjectURL(blob);
                  a.download = `${file?.name.replace(/\.[^.]+$/, '') ?? 'prediction'}-annotated.png`;
                  a.click();
                })
              }
            >
              Download the annotated image
            </button>
          </p>
        </section>
      )}
    </main>
  );
}
