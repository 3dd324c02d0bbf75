import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const stops = (globalThis as { __kinferStops?: Array<() => Promise<void>> }).__kinferStops ?? [];
  for (const stop of stops.reverse()) await stop();
  if (process.env.KINFER_TEST_DIR) rmSync(process.env.KINFER_TEST_DIR, { recursive: true, force: true });
}
