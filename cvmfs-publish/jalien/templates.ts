/**
 * Render the release templates (templates/modulefiles/, templates/jobagent/) with handlebars.
 * No HTML escaping: these are shell and Tcl files; values are validated before they get here.
 */
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

const cache = new Map<string, Handlebars.TemplateDelegate>();

/** Render `templates/<rel>` with `data`. */
export function renderTemplate(rel: string, data: Record<string, unknown>): string {
  let t = cache.get(rel);
  if (!t) {
    t = Handlebars.compile(readFileSync(`${TEMPLATES_DIR}${rel}`, 'utf8'), { noEscape: true, strict: true });
    cache.set(rel, t);
  }
  return t(data);
}
