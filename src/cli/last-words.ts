// Why a service died, in one line, from what it printed last: the fatal line of its JSON log (a
// crash its guard caught), else its stderr (Node's own report, a native abort), else its last
// error line. Where service logs go to files (the demo, the test stacks; `kinfer serve` shows
// them as they come), the supervisor quotes it when it restarts the service: why, not only the
// exit code.

/** Bytes of each stream kept: enough for a stack trace's first lines. */
const KEEP_BYTES = 4096;
/** Pino's levels: error and fatal. */
const ERROR_LEVEL = 50;
const FATAL_LEVEL = 60;
const MAX_SUMMARY = 600;

export class LastWords {
  #stdout = '';
  #stderr = '';

  stdout(chunk: Buffer | string): void {
    this.#stdout = (this.#stdout + chunk.toString()).slice(-KEEP_BYTES);
  }

  stderr(chunk: Buffer | string): void {
    this.#stderr = (this.#stderr + chunk.toString()).slice(-KEEP_BYTES);
  }

  /**
   * One line: its last fatal log line (the guard's report of a crash), else its stderr (Node's
   * report, or a native abort), else its last error log line; '' when there is none of them.
   */
  summary(): string {
    const entries = this.#stdout
      .split('\n')
      .map(parseJson)
      .filter((e): e is LogEntry => e !== undefined && typeof e.level === 'number' && e.level >= ERROR_LEVEL);
    const fatal = entries.findLast((e) => e.level >= FATAL_LEVEL);
    if (fatal) return clip(`last error: ${describe(fatal)}`);
    const stderr = this.#stderr
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    if (stderr.length > 0) return clip(`stderr: ${stderr.join(' | ')}`);
    const last = entries.at(-1);
    return last ? clip(`last error: ${describe(last)}`) : '';
  }
}

interface LogEntry {
  level: number;
  msg?: unknown;
  err?: { message?: unknown; stack?: unknown } | string;
}

/** Its message, then its error's first lines (`Type: message | at ...`). */
function describe(entry: LogEntry): string {
  const { err } = entry;
  const detail = typeof err === 'string' ? err : typeof err?.stack === 'string' ? firstLines(err.stack, 3) : err?.message;
  return `${String(entry.msg ?? '')}${detail ? `: ${String(detail)}` : ''}`;
}

function parseJson(line: string): LogEntry | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as LogEntry;
  } catch {
    return undefined; // a line cut by the kept window, or not a log line
  }
}

function firstLines(text: string, n: number): string {
  return text
    .split('\n')
    .slice(0, n)
    .map((l) => l.trim())
    .join(' | ');
}

/** The head: a crash report starts with where and what (`file:line`, `Error: ...`), frames follow. */
function clip(text: string): string {
  return text.length > MAX_SUMMARY ? `${text.slice(0, MAX_SUMMARY)}…` : text;
}
