// Local processes, for the parts that start and watch them (subprocess executor, launcher, local
// cluster, node agent): liveness that sees zombies and reused pids, signals to a process group,
// and stopping a child with escalation.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** State letter and start time (clock ticks since boot) from /proc; undefined where /proc is absent. */
export function procStat(pid: number): { state: string; startTime: string } | undefined {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return existsSync('/proc/self/stat') ? { state: 'X', startTime: '' } : undefined;
  }
  // Fields after "pid (comm)": state is the 3rd field of the line, starttime the 22nd.
  const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, startTime: fields[19]! };
}

/**
 * Is the process running? On Linux a zombie (exited, not yet reaped: common for orphans in a
 * container whose PID 1 does not reap) is not, and with `startTime` a reused pid is not either.
 */
export function isProcessAlive(pid: number, startTime?: string): boolean {
  const stat = procStat(pid);
  if (stat) return stat.state !== 'Z' && stat.state !== 'X' && (startTime === undefined || startTime === stat.startTime);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals every process in the group led by `pid`; a group that is already gone is fine. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Sends `signal` to a child and resolves when it has exited; SIGKILL after `killAfterMs` if given. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', killAfterMs?: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // A detached child may have been unref'd (`kinfer cluster up`'s): waited for now, its exit must
  // keep the event loop alive, or the process ends first once the SIGKILL timer has fired.
  child.ref();
  return new Promise((done) => {
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill(signal);
  });
}
