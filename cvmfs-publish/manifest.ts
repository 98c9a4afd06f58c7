/**
 * `.cvmfspublished` (manifest.cc, signing_tool.cc): field lines, `--`, SHA-1 hex of the field
 * block, newline, RSA PKCS#1 v1.5 SHA-1 signature over that hex text (binary, no trailing newline).
 */
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { ROOT_PATH_HASH } from './format.ts';

export interface Manifest {
  rootHash: string; // C
  rootSize: number; // B
  ttl: number; // D
  revision: number; // S
  garbageCollectable: boolean; // G
  alternateName: boolean; // A
  name: string; // N
  certificate: string; // X
  history?: string; // H
  timestamp: number; // T
  metainfo?: string; // M
  reflog?: string; // Y
  extra?: Record<string, string>;
}

export function manifestBody(m: Manifest): string {
  const lines = [
    `C${m.rootHash}`,
    `B${m.rootSize}`,
    `R${ROOT_PATH_HASH}`,
    `D${m.ttl}`,
    `S${m.revision}`,
    `G${m.garbageCollectable ? 'yes' : 'no'}`,
    `A${m.alternateName ? 'yes' : 'no'}`,
    `N${m.name}`,
    `X${m.certificate}`,
  ];
  if (m.history) lines.push(`H${m.history}`);
  lines.push(`T${m.timestamp}`);
  if (m.metainfo) lines.push(`M${m.metainfo}`);
  if (m.reflog) lines.push(`Y${m.reflog}`);
  return `${lines.join('\n')}\n`;
}

export function signManifest(m: Manifest, key: KeyObject): Buffer {
  const body = manifestBody(m);
  const hex = createHash('sha1').update(body).digest('hex');
  const sig = sign('sha1', Buffer.from(hex), key);
  return Buffer.concat([Buffer.from(`${body}--\n${hex}\n`), sig]);
}

export interface ParsedSigned {
  body: Buffer;
  fields: Record<string, string>;
  hashHex: string;
  signature: Buffer;
}

/** Split a signed file (manifest or whitelist) into its field block, hash line and signature. */
export function splitSigned(raw: Buffer, what: string): ParsedSigned {
  const i = raw.indexOf('\n--\n');
  if (i < 0) throw new Error(`${what}: no "--" separator line`);
  const body = raw.subarray(0, i + 1);
  const rest = raw.subarray(i + 4);
  const nl = rest.indexOf(0x0a);
  const hashHex = (nl < 0 ? rest : rest.subarray(0, nl)).toString('latin1');
  const signature = nl < 0 ? Buffer.alloc(0) : rest.subarray(nl + 1);
  const fields: Record<string, string> = {};
  for (const line of body.toString('utf8').split('\n')) if (line.length > 0) fields[line[0]] = line.slice(1);
  return { body, fields, hashHex, signature };
}

export function parseManifest(raw: Buffer): { manifest: Manifest; signed: ParsedSigned } {
  const signed = splitSigned(raw, '.cvmfspublished');
  const f = signed.fields;
  for (const k of ['C', 'S', 'N', 'X']) if (!f[k]) throw new Error(`.cvmfspublished: missing field ${k}`);
  return {
    signed,
    manifest: {
      rootHash: f.C,
      rootSize: Number(f.B ?? 0),
      ttl: Number(f.D ?? 240),
      revision: Number(f.S),
      garbageCollectable: f.G === 'yes',
      alternateName: f.A === 'yes',
      name: f.N,
      certificate: f.X,
      history: f.H || undefined,
      timestamp: Number(f.T ?? 0),
      metainfo: f.M || undefined,
      reflog: f.Y || undefined,
    },
  };
}

/** Check the field-block hash and the signature with the certificate's public key; returns a problem or null. */
export function checkManifestSignature(signed: ParsedSigned, certKey: KeyObject): string | null {
  const actual = createHash('sha1').update(signed.body).digest('hex');
  if (actual !== signed.hashHex) return `field block hash ${actual} does not match the signed hash ${signed.hashHex}`;
  if (!verify('sha1', Buffer.from(signed.hashHex), certKey, signed.signature)) return 'signature does not verify with the repository certificate';
  return null;
}
