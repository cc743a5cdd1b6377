/**
 * Command lines modelprint prints or records (the resume hint, the command in a lock file):
 * POSIX shell quoting, and credentials removed.
 */

/** Single-quotes each word that is not plainly safe (embedded quotes written as '\''). */
export function shellQuote(words: string[]): string {
  return words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * A word with the password of any URL in it (`scheme://user:password@host`, also a
 * one-slash `scheme:/user:password@host`) and any `password=`-like parameter replaced by
 * `***`, so a printed or recorded command line never carries a credential.
 */
export function redactWord(w: string): string {
  return w.replace(/(\b[a-z][a-z0-9+.-]*:\/\/?[^:@/\s]*):[^@\s]*@/gi, '$1:***@').replace(/\b(pass\w*=)[^&\s]*/gi, '$1***');
}

/** `modelprint <args>` as a shell command to paste, credentials redacted. */
export function commandLine(argv: string[] = process.argv.slice(2)): string {
  return shellQuote(['modelprint', ...argv.map(redactWord)]);
}
