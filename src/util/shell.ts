/**
 * POSIX shell quoting, for commands modelprint prints for the user to paste (the resume
 * hint): a word that is not plainly safe is single-quoted, with embedded single quotes
 * written as '\''.
 */
export function shellQuote(words: string[]): string {
  return words.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}
