/**
 * Option value parsers the command groups share (commander calls a parser with the value and the
 * previous one). A bad value is a UsageError naming the option, so it exits 2 before any work.
 * Byte sizes (`100G`) are parsed by images/archive/limits.ts parseByteSize.
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

/** A parser for a whole-number option of at least `min` (`--canary 2`), for commander's argParser. */
export function wholeNumber(name: string, min: number): (v: string) => number {
  return (v) => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${name} must be a whole number >= ${min}, got "${v}"`, { where: name, hint: `give e.g. ${name} ${Math.max(min, 2)}` });
    return Number(v);
  };
}

/** A parser for a positive number of seconds (`--timeout 120`), returned in milliseconds. */
export function seconds(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number of seconds, got "${v}"`, { where: name, hint: `give e.g. ${name} 120` });
    return Math.round(n * 1000);
  };
}
