import { readdirSync, readFileSync } from 'node:fs';

/** Pids of processes whose environment has NAME=value (Linux /proc). */
export function pidsWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

export { isProcessAlive as alive } from '../../src/process/local-processes.ts';
