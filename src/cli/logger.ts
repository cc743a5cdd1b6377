/** Logs go to stderr, always: stdout is for results (and exactly one JSON document with --json). */
export type Level = 'quiet' | 'normal' | 'verbose';

export class Logger {
  constructor(public level: Level = 'normal') {}

  info(msg: string): void {
    if (this.level !== 'quiet') process.stderr.write(`${msg}\n`);
  }

  warn(msg: string): void {
    process.stderr.write(`warning: ${msg}\n`);
  }

  debug(msg: string): void {
    if (this.level === 'verbose') process.stderr.write(`debug: ${msg}\n`);
  }
}
