/**
 * YAML files validated by a zod schema, the one loader for gridforge.yaml, site files,
 * inventories and wish lists. Errors are UsageErrors whose `where` is `file:line:column` and the
 * key path at fault, so an editor can jump there. Files are read with a size bound and never
 * through a FIFO or device (see safe-fs.ts).
 */
import { load } from 'js-yaml';
import type { ZodIssue, ZodType, ZodTypeDef } from 'zod';
import { UsageError } from './errors.ts';
import { readBoundedFile } from './safe-fs.ts';

/** Site files and configs are small; anything larger is not one. */
export const MAX_YAML_BYTES = 4 * 1024 * 1024;

export interface YamlText {
  file: string;
  text: string;
  doc: unknown;
}

/** Read and parse a YAML file; syntax errors name file:line:column. `missingHint` tells how to give an existing file. */
export function readYamlFile(file: string, opts: { missingHint?: string; maxBytes?: number } = {}): YamlText {
  let text: string;
  try {
    text = readBoundedFile(file, file, opts.maxBytes ?? MAX_YAML_BYTES).toString('utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`cannot read the file (${code})`, { where: file, hint: opts.missingHint ?? 'Give the path of an existing YAML file.' });
  }
  return { file, text, doc: parseYaml(text, file) };
}

/** Parse YAML text; a syntax error is a UsageError at file:line:column. */
export function parseYaml(text: string, file: string): unknown {
  try {
    return load(text, { filename: file });
  } catch (err: any) {
    const mark = err?.mark ? `:${err.mark.line + 1}:${err.mark.column + 1}` : '';
    const reason = err?.reason ?? String(err?.message ?? err).split('\n')[0];
    throw new UsageError(`not valid YAML: ${reason}`, {
      where: `${file}${mark}`,
      hint: 'Fix the YAML syntax at that line (indentation with spaces, "key: value", quote strings that hold ":" or "#").',
    });
  }
}

/** A zod issue path as people write it: `images.job.packages[2]`. */
export function keyPath(p: (string | number)[]): string {
  return p.length === 0 ? '(top level)' : p.map((k) => (typeof k === 'number' ? `[${k}]` : k)).join('.').replace(/\.\[/g, '[');
}

/**
 * Where a key path stands in block-style YAML text, as `line:column` (1-based), or undefined when
 * it cannot be found (flow style, anchors). Best effort: it follows indentation, `key:` and `- `.
 */
export function locateKey(text: string, p: (string | number)[]): string | undefined {
  const lines = text.split('\n');
  let from = 0;
  let minIndent = -1;
  let found: { line: number; col: number } | undefined;
  for (const k of p) {
    found = undefined;
    let index = -1;
    for (let i = from; i < lines.length; i++) {
      const raw = lines[i];
      const body = raw.replace(/\s+#.*$/, '');
      if (!body.trim() || body.trim().startsWith('#')) continue;
      const indent = raw.length - raw.trimStart().length;
      if (indent <= minIndent && i > from) break;
      if (typeof k === 'number') {
        if (/^\s*- /.test(raw) || /^\s*-$/.test(raw)) {
          index++;
          if (index === k) {
            found = { line: i, col: indent + 2 };
            break;
          }
        }
      } else {
        const m = /^(\s*(?:- )?)(["']?)([^"':#]+)\2\s*:(\s|$)/.exec(raw);
        if (m && m[3].trim() === k) {
          found = { line: i, col: m[1].length };
          break;
        }
      }
    }
    if (!found) return undefined;
    from = found.line + (typeof k === 'number' ? 0 : 1);
    minIndent = typeof k === 'number' ? found.col - 2 : found.col;
    if (typeof k === 'number') from = found.line;
  }
  return found ? `${found.line + 1}:${found.col + 1}` : undefined;
}

export interface SchemaOptions {
  /** Hints per dotted key path (numbers left out), e.g. `vobox.network.subnet`. */
  hints?: Record<string, string>;
  /** The hint when none matches a key. */
  defaultHint?: string;
  /** Turn one issue into a sentence (default: the key path and zod's message). */
  describe?: (issue: ZodIssue) => string;
}

/** Validate a parsed document; the first problem is the message, its file:line:column and key the `where`. */
export function validateYaml<T>(src: YamlText, schema: ZodType<T, ZodTypeDef, unknown>, opts: SchemaOptions = {}): T {
  const r = schema.safeParse(src.doc);
  if (r.success) return r.data;
  const issues = r.error.issues;
  const first = issues[0];
  const key = keyPath(first.path);
  const at = locateKey(src.text, first.path);
  const hintKey = first.path.filter((x) => typeof x === 'string').join('.');
  const hint =
    opts.hints?.[hintKey] ??
    (first.code === 'unrecognized_keys' ? `Remove or correct the key(s) ${first.keys.join(', ')}.` : opts.defaultHint ?? `Correct ${key} in ${src.file}.`);
  const describe = opts.describe ?? ((i: ZodIssue) => i.message);
  throw new UsageError(describe(first), {
    where: `${src.file}${at ? `:${at}` : ''}: ${key}`,
    hint,
    detail: issues.length > 1 ? issues.slice(1).map((i) => `  also ${keyPath(i.path)}: ${describe(i)}`).join('\n') : undefined,
  });
}

/** Read a YAML file and validate it against `schema`. */
export function loadYamlFile<T>(file: string, schema: ZodType<T, ZodTypeDef, unknown>, opts: SchemaOptions & { missingHint?: string } = {}): T {
  return validateYaml(readYamlFile(file, opts), schema, opts);
}
