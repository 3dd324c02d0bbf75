// `kinfer ... | head`: a reader that leaves is not an error (as for any Unix tool): the process
// exits 0 at once, unless a command at work asked to stop first (`kinfer run`, whose job still has
// writes in flight into a scratch folder it must then remove).
let onReaderGone: (() => void) | undefined;

/** What to do when stdout's reader leaves, instead of exiting at once; undefined: exit at once. */
export function whenReaderGone(handler: (() => void) | undefined): void {
  onReaderGone = handler;
}

export function exitWhenReaderGone(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (onReaderGone) onReaderGone();
    else process.exit(0);
  });
}
