import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const stops = (globalThis as { __kinferStops?: Array<() => Promise<void>> }).__kinferStops ?? [];
  for (const stop of stops.reverse()) await stop();
  // KINFER_KEEP_TEST_DIR=1 keeps logs and data for a look after a failure.
  if (process.env.KINFER_TEST_DIR && process.env.KINFER_KEEP_TEST_DIR !== '1') rmSync(process.env.KINFER_TEST_DIR, { recursive: true, force: true });
}
