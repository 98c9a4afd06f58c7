/**
 * A minimal task queue standing in for JAliEn's central services (the job broker the real JobAgent
 * asks for work, and the job status / result reporting), which do not exist on a testbed. HTTP on
 * the site LAN, served by the smoke run itself:
 *   GET  /job?slurm=<id>&host=&vm=&jalien=     the next task as Java properties (id, jdl, token, container, ttl), or 204
 *   POST /status?slurm=&id=&state=&host=       a status change (RUNNING from the agent, STARTED/RUNNING/DONE/ERROR_* from the wrapper)
 *   POST /result?slurm=&id=&exit=&step=&reason= body: the payload's output tail
 * Everything from the batch system down (sbatch, slurmd, the startup script, the JVM, the container) is real.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Task { id: string; jdl: string; token: string; container: string; apptainer: string; ttl: number }

export type QueueEvent =
  | { kind: 'take'; slurm: string; task: string; host: string; vm: string; jalien: string; at: number }
  | { kind: 'status'; slurm: string; task: string; state: string; host: string; at: number }
  | { kind: 'result'; slurm: string; task: string; exit: number; step: string; reason: string; output: string; at: number };

export interface TaskQueue { url: string; add(t: Task): void; close(): Promise<void> }

function props(t: Task): string {
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\:').replace(/=/g, '\\=');
  return [`id=${esc(t.id)}`, `jdl=${esc(Buffer.from(t.jdl).toString('base64'))}`, `token=${esc(t.token)}`, `container=${esc(t.container)}`, `apptainer=${esc(t.apptainer)}`, `ttl=${t.ttl}`, ''].join('\n');
}

export async function startTaskQueue(host: string, onEvent: (e: QueueEvent) => void): Promise<TaskQueue> {
  const pending: Task[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const q = (k: string) => u.searchParams.get(k) ?? '';
    const at = Date.now();
    if (req.method === 'GET' && u.pathname === '/job') {
      const t = pending.shift();
      if (!t) return void res.writeHead(204).end();
      onEvent({ kind: 'take', slurm: q('slurm'), task: t.id, host: q('host'), vm: q('vm'), jalien: q('jalien'), at });
      return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(props(t));
    }
    if (req.method === 'POST' && u.pathname === '/status') {
      onEvent({ kind: 'status', slurm: q('slurm'), task: q('id'), state: q('state'), host: q('host'), at });
      return void res.writeHead(200).end('ok\n');
    }
    if (req.method === 'POST' && u.pathname === '/result') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => { if (chunks.reduce((n, b) => n + b.length, 0) < 64 * 1024) chunks.push(c); });
      req.on('end', () => {
        onEvent({ kind: 'result', slurm: q('slurm'), task: q('id'), exit: Number(q('exit')), step: q('step'), reason: q('reason'), output: Buffer.concat(chunks).toString('utf8'), at });
        res.writeHead(200).end('ok\n');
      });
      return;
    }
    res.writeHead(404).end('not found\n');
  });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(0, host, () => ok()); });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    add: (t) => void pending.push(t),
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}
