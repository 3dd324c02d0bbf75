// ONNX Runtime 1.29 and later, on Linux and macOS, sends usage telemetry to Microsoft from every
// process that creates a session (microsoft/onnxruntime#27379): it reads /etc/machine-id, keeps a
// device id and an offline event database under ~/.cache/Microsoft/DeveloperTools/.onnxruntime,
// writes `mat-debug-<pid>.log` files to the temporary folder, and uploads to
// mobile.events.data.microsoft.com. A runner or predictor in a user's cluster must neither call
// out nor leave files behind, so kinfer opts out the documented way, unless whoever runs it chose
// a value themselves (ORT_DISABLE_TELEMETRY=0 keeps it on).

/** The variable ONNX Runtime reads, once per process, when the process's first session is created. */
const ORT_TELEMETRY_ENV = 'ORT_DISABLE_TELEMETRY';

/**
 * Turns ONNX Runtime's telemetry off in `env` when no value is set there (an empty one counts as
 * none). Called with `process.env` on the main thread before any session: ONNX Runtime reads the
 * process's own environment, and a worker thread's `process.env` is only a copy of it.
 */
export function disableOrtTelemetry(env: NodeJS.ProcessEnv = process.env): void {
  if (!env[ORT_TELEMETRY_ENV]) env[ORT_TELEMETRY_ENV] = '1';
}
