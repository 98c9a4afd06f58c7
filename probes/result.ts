/**
 * What a probe result and an upload are, and the checks every one passes before it is kept:
 * a probe's stdout must be ONE JSON object (as the JobAgent parses it, JAliEn
 * alien/site/JobAgent.java runProbe), to which the runner adds EXITCODE and EXECUTION_TIME (ms);
 * an upload is one node's results. Anything malformed or oversized is refused with the reason
 * (UsageError naming the field), never half-kept. Also: flattening a result into `probe.key` facts.
 */
import { UsageError } from '../base/errors.ts';
import { PROBE_NAME } from './scripts.ts';

export const UPLOAD_SCHEMA = 'gridforge-sitesonar/1';
/** Largest upload body accepted (bytes): nine probes of a real node take ~3 KiB. */
export const MAX_UPLOAD_BYTES = 256 * 1024;
/** Largest single probe result (bytes of its JSON). */
export const MAX_PROBE_BYTES = 64 * 1024;
/** Deepest nesting of a probe result. */
export const MAX_DEPTH = 8;
/** Most probes in one upload. */
export const MAX_PROBES = 64;

export type ProbeResult = Record<string, unknown> & { EXITCODE: number; EXECUTION_TIME: number; TIMED_OUT?: boolean; ERROR?: string };

export interface Upload {
  schema: typeof UPLOAD_SCHEMA;
  hostname: string;
  site: string;
  ce: string;
  time?: string;
  probes: Record<string, ProbeResult>;
}

const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const LABEL = /^[\x20-\x7e]{1,128}$/;
const FIELDS = new Set(['schema', 'hostname', 'site', 'ce', 'time', 'probes']);

function bad(where: string, why: string): UsageError {
  return new UsageError(`bad upload: ${where}: ${why}`, { where, hint: `send one node's results as produced by \`gridforge probe run\` (schema ${UPLOAD_SCHEMA})` });
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Depth of a JSON value (a scalar is 0). */
function depth(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let d = 0;
  for (const x of Array.isArray(v) ? v : Object.values(v)) d = Math.max(d, depth(x));
  return d + 1;
}

/**
 * Check a parsed upload document field by field (hand-written rather than a zod schema: this runs
 * for every upload, and is most of an upload's cost otherwise); UsageError naming the field.
 */
export function validateUpload(doc: unknown): Upload {
  if (!isObject(doc)) throw bad('(document)', 'not a JSON object');
  for (const k of Object.keys(doc)) if (!FIELDS.has(k)) throw bad(k, `unknown field (expected ${[...FIELDS].join(', ')})`);
  if (doc.schema !== UPLOAD_SCHEMA) throw bad('schema', `must be "${UPLOAD_SCHEMA}"`);
  if (typeof doc.hostname !== 'string' || !HOSTNAME.test(doc.hostname)) throw bad('hostname', 'a host name (letters, digits, . _ -; at most 253 characters)');
  for (const k of ['site', 'ce'] as const) if (typeof doc[k] !== 'string' || !LABEL.test(doc[k] as string)) throw bad(k, 'printable ASCII, 1 to 128 characters');
  if (doc.time !== undefined && (typeof doc.time !== 'string' || doc.time.length > 64)) throw bad('time', 'a time stamp (string, at most 64 characters)');
  if (!isObject(doc.probes)) throw bad('probes', 'an object of probe name -> result');
  const names = Object.keys(doc.probes);
  if (names.length === 0 || names.length > MAX_PROBES) throw bad('probes', `${names.length} probes, expected 1 to ${MAX_PROBES}`);
  for (const n of names) {
    if (!PROBE_NAME.test(n)) throw bad(`probes.${n}`, 'not a probe name (a-z 0-9 _ -)');
    const r = doc.probes[n];
    if (!isObject(r)) throw bad(`probes.${n}`, 'a probe result is a JSON object');
    if (!Number.isInteger(r.EXITCODE) || (r.EXITCODE as number) < -1 || (r.EXITCODE as number) > 255) throw bad(`probes.${n}.EXITCODE`, 'an integer from -1 to 255');
    if (typeof r.EXECUTION_TIME !== 'number' || !(r.EXECUTION_TIME >= 0 && r.EXECUTION_TIME <= 3_600_000)) throw bad(`probes.${n}.EXECUTION_TIME`, 'milliseconds, 0 to 3600000');
    const size = Buffer.byteLength(JSON.stringify(r));
    if (size > MAX_PROBE_BYTES) throw bad(`probes.${n}`, `${size} bytes, more than ${MAX_PROBE_BYTES}`);
    if (depth(r) > MAX_DEPTH) throw bad(`probes.${n}`, `nested deeper than ${MAX_DEPTH} levels`);
  }
  return doc as unknown as Upload;
}

/** Parse and check an upload body (bytes). */
export function parseUpload(body: Buffer): Upload {
  if (body.length > MAX_UPLOAD_BYTES) throw new UsageError(`upload of ${body.length} bytes is larger than ${MAX_UPLOAD_BYTES}`, { where: 'body', hint: 'send one node per upload' });
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new UsageError(`bad upload: body is not JSON (${(err as Error).message})`, { where: 'body', hint: 'send a JSON document (Content-Type: application/json)' });
  }
  return validateUpload(doc);
}

/** A probe's stdout as the JobAgent reads it: the lines joined, parsed as one JSON object. */
export function parseProbeOutput(stdout: string): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  const text = stdout.split('\n').join('').trim();
  if (text === '') return { ok: false, error: 'no output (a probe prints one JSON object on stdout)' };
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return { ok: false, error: 'output is JSON but not an object' };
    if (depth(v) > MAX_DEPTH) return { ok: false, error: `output is nested deeper than ${MAX_DEPTH} levels` };
    return { ok: true, value: v };
  } catch (err) {
    return { ok: false, error: `output is not one JSON object: ${(err as Error).message}: ${JSON.stringify(text.slice(0, 120))}` };
  }
}

/** An array of scalars as one fact: sorted, comma-joined; `(empty)` for none. */
export function joinScalars(values: unknown[]): string {
  return values.length === 0 ? '(empty)' : values.map(String).sort().join(',');
}

/**
 * A probe result as `probe.key` -> string facts: nested objects become dotted keys, arrays of
 * scalars one comma-joined sorted string, arrays of objects are left out (the report counts values).
 */
export function flatten(probe: string, value: unknown, out: Map<string, string> = new Map()): Map<string, string> {
  if (value === null || value === undefined) out.set(probe, 'null');
  else if (Array.isArray(value)) {
    if (value.every((x) => x === null || typeof x !== 'object')) out.set(probe, joinScalars(value));
  } else if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flatten(`${probe}.${k}`, v, out);
  } else out.set(probe, String(value));
  return out;
}
