// CPU seconds spent so far by the processes of each component, read before and after a phase:
// where a benchmark's cores went. From /proc/{pid}/stat: utime + stime, and cutime + cstime, the
// time of children that exited and were waited for (Postgres backends of closed connections count
// for the postmaster; a tool the bench ran to its end counts for the bench).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime and stime in /proc/{pid}/stat (100 on Linux everywhere in practice). */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** A component: its name and what its processes' command lines match (the first match wins). */
export type Component = [name: string, commandLine: RegExp];

export function cpuSeconds(components: Component[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const name = components.find(([, re]) => re.test(cmd))?.[0];
      if (!name) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      out.set(name, (out.get(name) ?? 0) + ticks / CLOCK_TICKS);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Milliseconds of CPU per unit of work (`units` requests, objects...) by component between two readings. */
export function cpuMsPer(components: Component[], before: Map<string, number>, after: Map<string, number>, units: number): Map<string, number> {
  return new Map(components.map(([n]) => [n, (((after.get(n) ?? 0) - (before.get(n) ?? 0)) * 1000) / units]));
}
