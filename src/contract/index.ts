// The one module the runner and the services share. Export JSON Schema with `npm run contract:schema`.
export * from './jobs.ts';
export * from './xai.ts';
export * from './storage-layout.ts';
export * from './runner-env.ts';
export * from './callbacks.ts';
export * from './results-file.ts';
export * from './model/onnx-header.ts';
export * from './model/metadata.ts';
export * from './model/class-match.ts';
export * from './model/onnx-graph.ts';
export * from './job-fields.ts';
export * from './job-errors.ts';
export * from './storage-credentials.ts';
export * from './model-ref.ts';
export * from './coco-rle.ts';
export * from './drawing.ts';
export * from './server-sent-events.ts';
