/**
 * Wait for a quiet machine before a timed run: dirty pages written back (`sync`), then at most
 * `maxBusy` of all cores busy (user, system, iowait, steal: everything but idle) over a 250 ms
 * window, or `maxWaitS` seconds at most. A method timed right after another one otherwise pays
 * for its predecessor's tail: dockerd removing an image it just imported, the writeback of half
 * a gigabyte, the kernel reclaiming memory. Returns the seconds waited (`timedOut` when the
 * machine never got quiet: the run is then measured anyway, and the caller says so).
 */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

function cpuTimes(): { idle: number; total: number } {
  // /proc/stat "cpu user nice system idle iowait irq softirq steal ..." (USER_HZ ticks)
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3], total: f.reduce((a, b) => a + b, 0) };
}

export async function waitQuiet(maxBusy = 0.1, maxWaitS = 30): Promise<{ waited: number; timedOut: boolean }> {
  const t0 = Date.now();
  execFileSync('sync');
  for (;;) {
    const a = cpuTimes();
    await new Promise((r) => setTimeout(r, 250));
    const b = cpuTimes();
    const busy = b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
    const waited = (Date.now() - t0) / 1000;
    if (busy <= maxBusy) return { waited, timedOut: false };
    if (waited >= maxWaitS) return { waited, timedOut: true };
  }
}
