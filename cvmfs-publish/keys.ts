/**
 * Repository keys, kept OUTSIDE the served tree (default `<repo-dir>.keys/`):
 * `<fqrn>.masterkey` + `<fqrn>.pub` (master key pair, signs the whitelist),
 * `<fqrn>.key` + `<fqrn>.crt` (repository key and its self-signed certificate, sign the manifest).
 * Key pairs come from node:crypto; the X.509 certificate from the `openssl` CLI (node cannot create one).
 * `repo init` writes key files exclusively and never through a symlink, accepts an existing keys
 * directory only when the caller owns it and nobody else can write to it, and uses a key set already
 * there only when asked (`--import-keys`).
 */
import { generateKeyPairSync, X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { effectiveUid as euid, openExclusive, readBoundedFile } from '../base/safe-fs.ts';

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

export interface EnsureKeysOptions {
  /** use a complete key set already in the directory (`repo init --import-keys`); without it one is refused */
  importExisting?: boolean;
}

export interface EnsuredKeys {
  files: KeyFiles;
  /** the key set was created now (not imported) */
  created: boolean;
  /** the keys directory itself was created now */
  dirCreated: boolean;
}

/**
 * Create the keys directory (0700), or accept an existing one only when it is a real directory
 * owned by the caller and not writable by group or others: anyone else who can write there
 * could plant a key set or a symlink before init signs with it.
 */
function prepareKeysDir(dir: string): boolean {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(dir);
  const fix = 'use a new directory for --keys (init creates it 0700), or fix the owner and mode of this one';
  if (!st.isDirectory()) throw new UsageError(`keys directory ${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}`, { where: dir, hint: fix });
  if (st.uid !== euid()) throw new UsageError(`keys directory ${dir} belongs to uid ${st.uid}, not to you (uid ${euid()})`, { where: dir, hint: fix });
  if (st.mode & 0o022) throw new UsageError(`keys directory ${dir} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`, { where: dir, hint: `chmod go-w ${dir}, or ${fix}` });
  return false;
}

/** True when something (even a dangling symlink) is at `p`. */
function present(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Write a key file that must not exist yet: exclusive, never through a symlink (base/safe-fs.ts). */
function writeKeyFile(file: string, data: string | Buffer, mode: number, made: string[]): void {
  const fd = openExclusive(file, 0o600);
  made.push(file);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
}

function selfSignedCert(keyFile: string, fqrn: string): Buffer {
  try {
    // to stdout: openssl's -out would follow a symlink planted at the certificate path
    return execFileSync('openssl', ['req', '-new', '-x509', '-key', keyFile, '-days', '3650', '-sha256', '-subj', `/CN=${fqrn} CernVM-FS Release Managers`], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new GridforgeError('openssl could not create the repository certificate', { cause: err, hint: 'install openssl (apt-get install openssl)', detail: String((err as { stderr?: Buffer }).stderr ?? '') });
  }
}

/** Create a key set in `dir`, or (with `importExisting`) use the complete one found there. */
export function ensureKeys(dir: string, fqrn: string, opts: EnsureKeysOptions = {}): EnsuredKeys {
  const f = keyFiles(dir, fqrn);
  const dirCreated = prepareKeysDir(dir);
  const found = [f.masterKey, f.masterPub, f.repoKey, f.repoCert].map(present);
  if (found.every(Boolean)) {
    if (!opts.importExisting) {
      throw new UsageError(`keys directory ${dir} already holds a key set for ${fqrn}`, { where: dir, hint: 'pass --import-keys to sign the new repository with it (only if you made these keys), or use another --keys directory' });
    }
    loadKeys(f); // validate
    return { files: f, created: false, dirCreated };
  }
  if (found.some(Boolean)) {
    throw new UsageError(`keys directory ${dir} holds only part of the key set for ${fqrn}`, {
      where: dir,
      hint: `provide all of ${fqrn}.masterkey, ${fqrn}.pub, ${fqrn}.key, ${fqrn}.crt, or none (then they are created)`,
    });
  }
  const made: string[] = [];
  try {
    const gen = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
    const master = gen();
    const repo = gen();
    writeKeyFile(f.masterKey, master.privateKey.export({ type: 'pkcs1', format: 'pem' }), 0o400, made);
    writeKeyFile(f.masterPub, master.publicKey.export({ type: 'spki', format: 'pem' }), 0o444, made);
    writeKeyFile(f.repoKey, repo.privateKey.export({ type: 'pkcs1', format: 'pem' }), 0o400, made);
    writeKeyFile(f.repoCert, selfSignedCert(f.repoKey, fqrn), 0o444, made);
  } catch (err) {
    for (const m of made) fs.rmSync(m, { force: true });
    if (dirCreated) fs.rmSync(dir, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP') {
      throw new UsageError(`something appeared at a key file path in ${dir} while init wrote the keys`, { where: dir, hint: 'make sure nobody else writes to the keys directory, then run init again', cause: err });
    }
    throw err;
  }
  return { files: f, created: true, dirCreated };
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
    // no-follow, bounded reads: a key file is a small regular file, never a symlink or a FIFO
    const read = (file: string) => readBoundedFile(file, file, 64 * 1024);
    const certPem = read(f.repoCert);
    const cert = new X509Certificate(certPem);
    const repoKey = createPrivateKey(read(f.repoKey));
    if (!cert.checkPrivateKey(repoKey)) throw new Error(`${f.repoCert} does not match ${f.repoKey}`);
    return { files: f, masterKey: createPrivateKey(read(f.masterKey)), masterPub: createPublicKey(read(f.masterPub)), repoKey, certPem, cert };
  } catch (err) {
    throw new UsageError(`cannot load repository keys from ${f.dir}: ${(err as Error).message}`, { where: f.dir, hint: 'restore the keys directory or pass the right one with --keys' });
  }
}

/** Whitelist fingerprint: SHA-1 of the certificate DER as AB:CD:... */
export function certFingerprint(cert: X509Certificate): string {
  return cert.fingerprint.toUpperCase();
}
