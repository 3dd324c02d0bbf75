// How a kinfer command ends: an error with the exit code it means, for main.ts to print and exit
// with. The codes are `kinfer run`'s (its --help lists them); a refusal is also every command's
// usage error.
export const EXIT = { ok: 0, someImagesFailed: 1, refused: 2, failed: 3 } as const;

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.refused) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
