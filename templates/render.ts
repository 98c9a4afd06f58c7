/**
 * The one template renderer: one Handlebars instance with the partials of templates/partials/
 * and every helper the templates use. Strict (a missing field is an error, not an empty string)
 * and without HTML escaping (the outputs are Dockerfiles, shell, Tcl and config files); values in
 * shell templates are quoted by the helpers `sh`, `shword`, `envname`, `comment`
 * (base/shell-quote.ts), so a value never becomes shell syntax. Errors name the template file
 * and, when Handlebars knows it, the line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { GridforgeError } from '../base/errors.ts';
import { commentText, shellQuote, shellWord } from '../base/shell-quote.ts';

/** The project's templates folder (templates belong to gridforge, not to a config file). */
export const TEMPLATES_DIR = fileURLToPath(new URL('./', import.meta.url));

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function str(v: unknown, helper: string): string {
  if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`template helper ${helper}: expected a string, got ${typeof v}`);
  return String(v);
}

function registerHelpers(hb: typeof Handlebars): void {
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ', ') : ''));
  hb.registerHelper('sh', (v: unknown) => shellQuote(str(v, 'sh')));
  hb.registerHelper('shword', (v: unknown) => shellWord(str(v, 'shword')));
  hb.registerHelper('comment', (v: unknown) => commentText(str(v, 'comment')));
  hb.registerHelper('envname', (v: unknown) => {
    const name = str(v, 'envname');
    if (!ENV_NAME.test(name)) throw new Error(`template helper envname: "${name}" is not an environment variable name`);
    return name;
  });
}

function registerPartials(hb: typeof Handlebars): void {
  const dir = path.join(TEMPLATES_DIR, 'partials');
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.hbs')) hb.registerPartial(f.slice(0, -4), readFileSync(path.join(dir, f), 'utf8'));
  }
}

let instance: typeof Handlebars | undefined;

/** The Handlebars instance, made on first use (helpers + partials). */
function handlebars(): typeof Handlebars {
  if (!instance) {
    instance = Handlebars.create();
    registerHelpers(instance);
    registerPartials(instance);
  }
  return instance;
}

const compiled = new Map<string, Handlebars.TemplateDelegate>();

/** `file:line` when Handlebars reported a line (parse errors, strict lookups), else `file`. */
function whereOf(file: string, err: any): string {
  const line = err?.lineNumber ?? /on line (\d+)/.exec(String(err?.message ?? ''))?.[1] ?? / - (\d+):\d+$/.exec(String(err?.message ?? ''))?.[1];
  return line ? `${file}:${line}` : file;
}

/** Render template text that came from `file` (absolute or relative to templates/; used in errors and as cache key). */
export function renderText(file: string, text: string, data: object): string {
  const key = `${file}\0${text}`;
  try {
    let t = compiled.get(key);
    if (!t) {
      t = handlebars().compile(text, { noEscape: true, strict: true });
      compiled.set(key, t);
    }
    return t(data);
  } catch (err: any) {
    throw new GridforgeError(`template does not render: ${err?.message ?? err}`, {
      where: whereOf(path.resolve(TEMPLATES_DIR, file), err),
      hint: 'Fix the handlebars template (gridforge ships it; this is a defect in templates/).',
      cause: err,
    });
  }
}

/** Render `templates/<rel>` (or an absolute template path) with `data`. */
export function renderTemplate(rel: string, data: object): string {
  const file = path.resolve(TEMPLATES_DIR, rel);
  return renderText(file, readFileSync(file, 'utf8'), data);
}
