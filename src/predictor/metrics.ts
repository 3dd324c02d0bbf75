// The predictor's Prometheus metrics, beside the HTTP ones every service has (src/http/metrics.ts).
import { Counter, Histogram, type Registry } from 'prom-client';

export interface PredictorMetrics {
  latency: Histogram<'model' | 'version'>;
  queue: Histogram<'model' | 'version'>;
  batchSize: Histogram<'model' | 'version'>;
  cache: Counter<'model' | 'result'>;
  errors: Counter<'reason'>;
  reloads: Counter<'model' | 'outcome'>;
}

export function predictorMetrics(registry: Registry): PredictorMetrics {
  const registers = [registry];
  return {
    latency: new Histogram({
      name: 'kinfer_predict_latency_seconds',
      help: 'Prediction latency (queue, preprocessing, inference, postprocessing) by model and version',
      labelNames: ['model', 'version'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    queue: new Histogram({
      name: 'kinfer_predict_queue_seconds',
      help: 'Time a request waited for its batch to run',
      labelNames: ['model', 'version'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    batchSize: new Histogram({
      name: 'kinfer_predict_batch_size',
      help: 'Images per batch run by the dynamic batcher',
      labelNames: ['model', 'version'] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
    cache: new Counter({
      name: 'kinfer_predict_cache_total',
      help: 'Result cache lookups by result (hit, miss)',
      labelNames: ['model', 'result'] as const,
      registers,
    }),
    errors: new Counter({ name: 'kinfer_predict_errors_total', help: 'Refused or failed predictions by reason', labelNames: ['reason'] as const, registers }),
    reloads: new Counter({ name: 'kinfer_predict_reloads_total', help: 'Model reloads by outcome', labelNames: ['model', 'outcome'] as const, registers }),
  };
}
