/**
 * Shell quoting for bash and POSIX sh, the one place every rendered script and remote command
 * gets it from: a quoted value is always exactly one word holding the value's bytes.
 */

/** Single-quote a value: the result is one word with exactly the value's bytes. */
export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** Characters that are never special to bash in a word (no quote, `$`, `~`, glob, brace, `#`, space). */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** `NAME=...` as a command's first word would be an assignment, not a word. */
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** One shell word: bare when it only has plain characters (readable paths and flags), else single-quoted. */
export function shellWord(v: string): string {
  return PLAIN_WORD.test(v) && !ASSIGNMENT.test(v) ? v : shellQuote(v);
}

/** Text for a `# ...` comment line: only printable ASCII stays, the rest (newlines first) becomes `?`. */
export function commentText(v: string): string {
  return v.replace(/[^\x20-\x7e]/g, '?');
}

/** Inside double quotes: escape what bash expands there (`\`, `"`, `$`, backquote). */
export function doubleQuoteInner(s: string): string {
  return s.replace(/[\\"$`]/g, (c) => `\\${c}`);
}
