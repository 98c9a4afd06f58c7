/**
 * Render the release templates (templates/modulefiles/, templates/jobagent/) with handlebars.
 * No HTML escaping: these are shell and Tcl files. Shell templates quote every value with the
 * helpers below (`sh`, `shword`, `envname`, `comment`), so a value can never become shell syntax
 * even when it was not validated before it got here (templates/jobagent/startup.sh.hbs).
 */
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

/** Single-quote a value for bash/sh: the result is always exactly one word with the value's bytes. */
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

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const hb = Handlebars.create();
const str = (v: unknown, helper: string): string => {
  if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`template helper ${helper}: expected a string, got ${typeof v}`);
  return String(v);
};
hb.registerHelper('sh', (v: unknown) => shellQuote(str(v, 'sh')));
hb.registerHelper('shword', (v: unknown) => shellWord(str(v, 'shword')));
hb.registerHelper('comment', (v: unknown) => commentText(str(v, 'comment')));
hb.registerHelper('envname', (v: unknown) => {
  const name = str(v, 'envname');
  if (!ENV_NAME.test(name)) throw new Error(`template helper envname: "${name}" is not an environment variable name`);
  return name;
});

const cache = new Map<string, Handlebars.TemplateDelegate>();

/** Render `templates/<rel>` with `data`. */
export function renderTemplate(rel: string, data: Record<string, unknown>): string {
  let t = cache.get(rel);
  if (!t) {
    t = hb.compile(readFileSync(`${TEMPLATES_DIR}${rel}`, 'utf8'), { noEscape: true, strict: true });
    cache.set(rel, t);
  }
  return t(data);
}
