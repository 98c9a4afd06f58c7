/**
 * Cleanup on SIGINT / SIGTERM / SIGHUP: long operations register what they would leave behind
 * (a spool file, a half-written sandbox, a temporary directory) and unregister it when done.
 * On a signal every registered cleanup runs synchronously, then the process exits with
 * 128 + signal number, as a shell would report it. Nothing half-written is left behind.
 */
import * as fs from 'node:fs';
import { constants } from 'node:os';

type Cleanup = () => void;
const pending = new Set<Cleanup>();
let installed = false;

function runAll(): void {
  for (const fn of [...pending].reverse()) {
    try {
      fn();
    } catch {
      // best effort: a failing cleanup must not stop the others
    }
  }
  pending.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      runAll();
      process.exit(128 + (constants.signals[sig] ?? 1));
    });
  }
}

/** Run `fn` if the process is interrupted before the returned function is called; call it when done. */
export function onInterrupt(fn: Cleanup): () => void {
  install();
  pending.add(fn);
  return () => {
    pending.delete(fn);
  };
}

/** Remove `target` (file or tree) if the process is interrupted; call the returned function when it is no longer temporary. */
export function removeOnInterrupt(target: string): () => void {
  return onInterrupt(() => fs.rmSync(target, { recursive: true, force: true }));
}
