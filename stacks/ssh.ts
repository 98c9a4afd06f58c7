/**
 * The SSH engine's connection (ssh2): key or agent auth, host key pinning (SHA256 fingerprint or a
 * known_hosts file; an unknown key is refused with both fingerprints), keep-alive, timeouts, and
 * clear messages for unreachable / auth refused / key mismatch. Offers exec (with stdin), file
 * read/write (atomic: temp + rename) and a forwarded unix socket (the remote Docker API).
 */
import { Client, type ConnectConfig, type ClientChannel } from 'ssh2';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { pipeline, type Duplex, type Readable } from 'node:stream';
import { GridforgeError, UsageError } from '../base/errors.ts';
import { shellQuote as q } from '../base/shell-quote.ts';
import type { SiteSpec } from './spec.ts';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** Keys listed for `host` (and port) in a known_hosts file, including hashed (|1|) entries. */
export function knownHostKeys(file: string, host: string, port: number): Buffer[] {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  const keys: Buffer[] = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let parts = line.split(/\s+/);
    if (parts[0].startsWith('@')) {
      if (parts[0] === '@revoked') continue;
      parts = parts.slice(1);
    }
    const [patterns, , b64] = parts;
    if (!b64) continue;
    const match = patterns.split(',').some((p) => {
      if (p.startsWith('|1|')) {
        const [, , salt, hash] = p.split('|');
        return names.some((n) => createHmac('sha1', Buffer.from(salt, 'base64')).update(n).digest('base64') === hash);
      }
      return names.includes(p);
    });
    if (match) keys.push(Buffer.from(b64, 'base64'));
  }
  return keys;
}

export class SshHost {
  private closed = false;
  constructor(
    readonly client: Client,
    readonly label: string,
    /** Default for exec(): a command silent (no output, no input sent) this long is stopped (site file host.commandIdleTimeoutMs). */
    readonly idleTimeoutMs = 600_000,
  ) {
    client.on('error', () => {});
    client.on('close', () => {
      this.closed = true;
    });
  }

  static async connect(spec: SiteSpec): Promise<SshHost> {
    const h = spec.host;
    const label = `${h.user}@${h.address}:${h.port}`;
    const file = spec.file ?? 'site file';
    let pinned: string[] = [];
    let pinSource = '';
    if (h.hostKey) {
      pinned = [h.hostKey.replace(/=$/, '')];
      pinSource = 'host.hostKey';
    } else if (h.knownHosts) {
      if (!existsSync(h.knownHosts)) throw new UsageError(`knownHosts file ${h.knownHosts} does not exist`, { where: `${file}: host.knownHosts`, hint: 'Point knownHosts at an existing known_hosts file, or pin host.hostKey instead.' });
      pinned = knownHostKeys(h.knownHosts, h.address, h.port).map(fingerprint);
      pinSource = `host.knownHosts (${h.knownHosts})`;
    }
    let presented = '';
    const cfg: ConnectConfig = {
      host: h.address,
      port: h.port,
      username: h.user,
      readyTimeout: h.connectTimeoutMs,
      keepaliveInterval: h.keepAliveIntervalMs,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        presented = fingerprint(key);
        return pinned.includes(presented);
      },
    };
    if (h.identityFile) {
      if (!existsSync(h.identityFile)) throw new UsageError(`identity file ${h.identityFile} does not exist`, { where: `${file}: host.identityFile`, hint: 'Point identityFile at your private key, or remove it to use the SSH agent.' });
      cfg.privateKey = readFileSync(h.identityFile);
    }
    const agent = typeof h.agent === 'string' ? h.agent : h.agent === true || !h.identityFile ? process.env.SSH_AUTH_SOCK : undefined;
    if (agent) cfg.agent = agent;
    if (!cfg.privateKey && !cfg.agent) {
      throw new UsageError('no SSH credentials: neither identityFile nor an SSH agent', { where: `${file}: host.identityFile`, hint: 'Set host.identityFile, or start ssh-agent and load a key (SSH_AUTH_SOCK).' });
    }
    const client = new Client();
    return await new Promise<SshHost>((resolve, reject) => {
      let done = false;
      client.once('ready', () => {
        done = true;
        resolve(new SshHost(client, label, h.commandIdleTimeoutMs));
      });
      client.once('error', (err: Error & { level?: string; code?: string }) => {
        if (done) return;
        done = true;
        client.end();
        const msg = err.message || String(err);
        if (/host key verification failed|hostVerifier/i.test(msg) || (presented && !pinned.includes(presented))) {
          reject(
            new UsageError(`host key of ${h.address} is not the pinned one: the host presented ${presented || '(none)'}, ${pinSource} expects ${pinned.length ? pinned.join(' or ') : 'nothing for this host'}; connection refused`, {
              where: `${file}: host.${h.hostKey ? 'hostKey' : 'knownHosts'}`,
              hint: "Verify the host's key out of band (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host); if it legitimately changed, update the pin.",
            }),
          );
        } else if (err.level === 'client-authentication') {
          reject(new GridforgeError(`authentication refused by ${label}`, { where: label, hint: `Check host.user and that the key ${h.identityFile ?? '(agent)'} is in the host's authorized_keys.` }));
        } else if (/timed out/i.test(msg) || err.code === 'ETIMEDOUT') {
          reject(new GridforgeError(`cannot reach ${label}: timed out after ${h.connectTimeoutMs} ms`, { where: label, hint: 'Check host.address/port, routing and firewalls, or raise host.connectTimeoutMs.' }));
        } else {
          reject(new GridforgeError(`cannot reach ${label}: ${err.code ?? ''} ${msg}`.replace(/\s+/g, ' '), { where: label, hint: 'Check host.address and host.port, and that sshd runs on the host.' }));
        }
      });
      try {
        client.connect(cfg);
      } catch (err) {
        reject(new UsageError(`cannot use SSH credentials: ${(err as Error).message}`, { where: `${file}: host.identityFile`, hint: 'Use an unencrypted OpenSSH private key or the agent.' }));
      }
    });
  }

  /**
   * Run a command; never throws for a non-zero exit (see run()). A stream stdin is piped only once
   * the channel is open, through stream.pipeline: a failing stdin closes the channel and fails the
   * call (a plain .pipe would leave the command waiting for input for ever). `timeoutMs` bounds the
   * whole command; `idleTimeoutMs` (default the host's) bounds the time without output or input
   * sent, so a command that hangs fails instead of holding the deploy for ever. Either is an error.
   */
  exec(cmd: string, opts: { stdin?: Buffer | string | Readable; timeoutMs?: number; idleTimeoutMs?: number } = {}): Promise<ExecResult> {
    const stdin = opts.stdin;
    const dropStdin = () => {
      if (stdin !== undefined && typeof stdin !== 'string' && !Buffer.isBuffer(stdin)) stdin.destroy();
    };
    if (this.closed) {
      dropStdin();
      return Promise.reject(new GridforgeError(`connection to ${this.label} was closed`, { where: this.label, hint: 'Run the command again; every step is idempotent.' }));
    }
    const idleMs = opts.idleTimeoutMs ?? this.idleTimeoutMs;
    return new Promise((resolve, reject) => {
      const cb = (err: Error | undefined, ch: ClientChannel) => {
        if (err) {
          dropStdin();
          return reject(new GridforgeError(`cannot run a command on ${this.label}: ${err.message}`, { where: this.label, hint: 'Run the command again; every step is idempotent.' }));
        }
        const out: Buffer[] = [];
        const errb: Buffer[] = [];
        let failure: string | null = null;
        let settled = false;
        const fail = (why: string, hint?: string) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          clearTimeout(idle);
          reject(new GridforgeError(`command on ${this.label} failed: ${why}`, { where: this.label, detail: `command: ${cmd}`, hint }));
        };
        // A command that overstays: the channel is asked to send SIGKILL and closed, and the call
        // fails at once. sshd may ignore the signal (OpenSSH does for these sessions) and keeps the
        // process until it ends by itself, so the error says it may still be there.
        const stop = (why: string, hint?: string) => {
          failure ??= why;
          try {
            ch.signal('KILL');
          } catch { /* the channel is going anyway */ }
          ch.close();
          fail(why, hint);
        };
        const timer = opts.timeoutMs ? setTimeout(() => stop(`timed out after ${opts.timeoutMs} ms`), opts.timeoutMs) : undefined;
        const idle = setTimeout(() => stop(`no output and no input for ${idleMs / 1000} s: stopped (the command hangs?)`, 'It may still be running on the host: look there for what it waits on (a hung mount such as /cvmfs, a lock, a prompt). If it is only slow, raise host.commandIdleTimeoutMs in the site file.'), idleMs);
        const active = () => idle.refresh();
        ch.on('data', active);
        ch.stderr.on('data', active);
        ch.on('data', (d: Buffer) => out.push(d));
        ch.stderr.on('data', (d: Buffer) => errb.push(d));
        ch.on('close', (code: number | null) => {
          if (failure) return fail(failure);
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          clearTimeout(idle);
          resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errb).toString('utf8'), code: code ?? 255 });
        });
        if (stdin === undefined) ch.end();
        else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) ch.end(stdin);
        else {
          // A command that exits before reading all its input is reported by its exit code, not as a failure here.
          stdin.on('data', active);
          pipeline(stdin, ch, (e) => {
            if (e && !failure && (e as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') failure = `cannot send its input: ${e.message}`;
          });
        }
      };
      try {
        this.client.exec(cmd, cb);
      } catch (err) {
        dropStdin();
        reject(new GridforgeError(`connection to ${this.label} was closed: ${(err as Error).message}`, { where: this.label, hint: 'Run the command again; every step is idempotent.' }));
      }
    });
  }

  /** Run a command and throw a GridforgeError with its stderr when it fails. */
  async run(cmd: string, what?: string): Promise<string> {
    const r = await this.exec(cmd);
    if (r.code !== 0) {
      throw new GridforgeError(`${what ?? `command failed on ${this.label}`}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`, {
        where: this.label,
        detail: `command: ${cmd}`,
      });
    }
    return r.stdout;
  }

  async readFile(path: string): Promise<string | null> {
    const r = await this.exec(`cat ${q(path)} 2>/dev/null || echo __GF_MISSING__ >&2`);
    if (r.stderr.includes('__GF_MISSING__')) return null;
    return r.stdout;
  }

  /**
   * Atomic write: a random-named temporary beside the file, created exclusively (noclobber: a name
   * planted there is refused, never followed), then renamed over; creates the parent directory.
   */
  async writeFile(path: string, content: string, mode = '0644'): Promise<void> {
    const tmp = `${path}.gridforge-${randomBytes(8).toString('hex')}`;
    const dir = path.replace(/\/[^/]*$/, '') || '/';
    const r = await this.exec(`mkdir -p ${q(dir)} && (set -C; umask 077; cat > ${q(tmp)}) && chmod ${mode} ${q(tmp)} && mv -f ${q(tmp)} ${q(path)} || { rm -f ${q(tmp)}; exit 1; }`, { stdin: content });
    if (r.code !== 0) throw new GridforgeError(`cannot write ${path} on ${this.label}: ${r.stderr.trim()}`, { where: this.label });
  }

  /** A stream to a unix socket on the host (OpenSSH streamlocal forwarding). */
  forwardUnix(socketPath: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      this.client.openssh_forwardOutStreamLocal(socketPath, (err, ch) => {
        if (err) {
          return reject(
            new GridforgeError(`cannot open ${socketPath} on ${this.label} through SSH: ${err.message}`, {
              where: this.label,
              hint: 'Check host.dockerSocket, that dockerd runs, and that sshd allows AllowStreamLocalForwarding.',
            }),
          );
        }
        resolve(ch as unknown as Duplex);
      });
    });
  }

  close(): void {
    this.client.end();
  }
}
