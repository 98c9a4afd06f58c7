/**
 * Option value parsers the command groups share (commander calls a parser with the value and the
 * previous one). A bad value is a UsageError naming the option, so it exits 2 before any work.
 * Byte sizes (`100G`) are parsed by images/archive/limits.ts parseByteSize. site.ts, rollout.ts and
 * fleet.ts still have their own copies of collect and a whole-number parser.
 */
import { UsageError } from '../../base/errors.ts';

/** A repeatable option: each occurrence appends its value to the list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** An optional non-negative integer option (`--max-file-size 1000`); undefined when not given. */
export function optionalInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} must be a non-negative integer, got "${v}"`, { where: name, hint: `pass e.g. ${name} 3` });
  return Number(v);
}
