/**
 * Repository keys, kept OUTSIDE the served tree (default `<repo-dir>.keys/`):
 * `<fqrn>.masterkey` + `<fqrn>.pub` (master key pair, signs the whitelist),
 * `<fqrn>.key` + `<fqrn>.crt` (repository key and its self-signed certificate, sign the manifest).
 * Key pairs come from node:crypto; the X.509 certificate from the `openssl` CLI (node cannot create one).
 */
import { generateKeyPairSync, X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { GridforgeError, UsageError } from '../scripts/lib/errors.ts';

export interface KeyFiles {
  dir: string;
  masterKey: string;
  masterPub: string;
  repoKey: string;
  repoCert: string;
}

export function keyFiles(dir: string, fqrn: string): KeyFiles {
  return {
    dir,
    masterKey: path.join(dir, `${fqrn}.masterkey`),
    masterPub: path.join(dir, `${fqrn}.pub`),
    repoKey: path.join(dir, `${fqrn}.key`),
    repoCert: path.join(dir, `${fqrn}.crt`),
  };
}

export function defaultKeysDir(repoDir: string): string {
  return `${path.resolve(repoDir).replace(/\/+$/, '')}.keys`;
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(child));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export function assertKeysOutside(keysDir: string, repoDir: string): void {
  if (isInside(keysDir, repoDir)) {
    throw new UsageError(`keys directory ${keysDir} lies inside the served repository directory`, {
      where: keysDir,
      hint: 'keep keys outside the repository (default: <repo-dir>.keys/); pass --keys <dir> elsewhere',
    });
  }
}

/** Create missing keys (existing complete key sets are imported unchanged). */
export function ensureKeys(dir: string, fqrn: string): { files: KeyFiles; created: boolean } {
  const f = keyFiles(dir, fqrn);
  const present = [f.masterKey, f.masterPub, f.repoKey, f.repoCert].map((p) => fs.existsSync(p));
  if (present.every(Boolean)) {
    loadKeys(f); // validate
    return { files: f, created: false };
  }
  if (present.some(Boolean)) {
    throw new UsageError(`keys directory ${dir} holds only part of the key set for ${fqrn}`, {
      where: dir,
      hint: `provide all of ${fqrn}.masterkey, ${fqrn}.pub, ${fqrn}.key, ${fqrn}.crt, or none (then they are created)`,
    });
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const gen = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
  const master = gen();
  const repo = gen();
  fs.writeFileSync(f.masterKey, master.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o400 });
  fs.writeFileSync(f.masterPub, master.publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o444 });
  fs.writeFileSync(f.repoKey, repo.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o400 });
  try {
    execFileSync('openssl', ['req', '-new', '-x509', '-key', f.repoKey, '-out', f.repoCert, '-days', '3650', '-sha256', '-subj', `/CN=${fqrn} CernVM-FS Release Managers`], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new GridforgeError('openssl could not create the repository certificate', { cause: err, hint: 'install openssl (apt-get install openssl)', detail: String((err as { stderr?: Buffer }).stderr ?? '') });
  }
  fs.chmodSync(f.repoCert, 0o444);
  return { files: f, created: true };
}

export interface LoadedKeys {
  files: KeyFiles;
  masterKey: KeyObject;
  masterPub: KeyObject;
  repoKey: KeyObject;
  certPem: Buffer;
  cert: X509Certificate;
}

export function loadKeys(f: KeyFiles): LoadedKeys {
  try {
    const certPem = fs.readFileSync(f.repoCert);
    const cert = new X509Certificate(certPem);
    const repoKey = createPrivateKey(fs.readFileSync(f.repoKey));
    if (!cert.checkPrivateKey(repoKey)) throw new Error(`${f.repoCert} does not match ${f.repoKey}`);
    return { files: f, masterKey: createPrivateKey(fs.readFileSync(f.masterKey)), masterPub: createPublicKey(fs.readFileSync(f.masterPub)), repoKey, certPem, cert };
  } catch (err) {
    throw new UsageError(`cannot load repository keys from ${f.dir}: ${(err as Error).message}`, { where: f.dir, hint: 'restore the keys directory or pass the right one with --keys' });
  }
}

/** Whitelist fingerprint: SHA-1 of the certificate DER as AB:CD:... */
export function certFingerprint(cert: X509Certificate): string {
  return cert.fingerprint.toUpperCase();
}
