/** The CLI's exit codes; scripts can rely on them. */
export const EXIT = Object.freeze({
  ok: 0,
  /** The command ran and found problems (check-config), or import-fail2ban translated no jail. */
  problems: 1,
  /** Wrong arguments. */
  usage: 2,
  /** Redis or the admin API could not be reached. */
  unreachable: 3,
  /** The admin API refused the token or the caller. */
  refused: 4,
  /** The operation was refused: an invalid address, an unknown jail, an ignored client. */
  rejected: 5,
});

/** An error that ends the command with a message and an exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly code: string | undefined;
  /** The option at fault, when the error is about one (a config module that threw a jailkeeper error). */
  readonly option: string | undefined;

  constructor(exitCode: number, message: string, code?: string, option?: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code;
    this.option = option;
  }
}
