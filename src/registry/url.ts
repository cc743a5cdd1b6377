/** Registry locations given as URLs: which are PostgreSQL, and how they are shown (never with a password). */

/** The URL with its password (and any password parameter) replaced by ***. */
export function redactUrl(url: string): string {
  let out = url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of [...u.searchParams.keys()]) {
      if (/pass/i.test(k)) u.searchParams.set(k, '***');
    }
    out = u.toString();
  } catch {
    // not a URL to the parser: the patterns below still apply
  }
  // Also where the parser saw no password: `postgres:/u:pw@h/db` parses as a path.
  return out.replace(/^([a-z][a-z0-9+.-]*:\/*)([^:@/]*):[^@]*@/i, '$1$2:***@').replace(/(pass\w*=)[^&]*/gi, '$1***');
}

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/**
 * Whether `spec` is meant as a URL rather than a file path: a scheme of two or more letters and
 * a colon (`postgres:/u:pw@h/db`, `mysql://…`); one letter is a Windows drive (`C:\…`).
 */
export function looksLikeUrl(spec: string): boolean {
  return /^[a-z][a-z0-9+.-]+:/i.test(spec);
}
