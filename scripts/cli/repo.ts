/** `gridforge repo ...`: CernVM-FS repository commands (work happens in cvmfs-publish/). */
import type { Command } from 'commander';
import { UsageError } from '../../base/errors.ts';
import { formatTable, printJson, printLine, progress } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { optionalInt as int } from './options.ts';
import { summaryOf } from './groups.ts';
import {
  abortTransaction, checkout, diffTags, garbageCollect, initRepository, link, listRevisions, listTags, openRepository,
  publishTree, removePath, resignCronLine, resignWhitelist, rollback, serveRepository, setGarbageCollectable, tagRevision, verifyRepository,
} from '../../cvmfs-publish/index.ts';

type Json = { json?: boolean };

function out(opts: Json, value: unknown, human: () => void): void {
  if (opts.json) printJson(value);
  else human();
}

function mode(m: number, type: string): string {
  const t = type === 'dir' ? 'd' : type === 'symlink' ? 'l' : type === 'special' ? 's' : '-';
  const bits = 'rwxrwxrwx';
  let s = '';
  for (let i = 0; i < 9; i++) s += m & (1 << (8 - i)) ? bits[i] : '-';
  return t + s;
}

export function register(program: Command): void {
  const repo = program.command('repo').description(summaryOf('repo'));

  withJson(repo.command('init <repo-dir>').description('create a repository (revision 1) and its keys'))
    .requiredOption('--name <fqrn>', 'repository name, e.g. alice.example.org')
    .option('--keys <dir>', 'keys directory (created 0700; an existing one must be yours and not group/world-writable); default <repo-dir>.keys')
    .option('-z, --gc', 'garbage-collectable: manifests say G yes and `repo gc` may delete objects (as cvmfs_server mkfs -z; default: not collectable, `repo gc` refuses it)')
    .option('--import-keys', 'sign with the complete key set already in the keys directory (refused without this option)')
    .option('--max-file-size <bytes>', 'refuse files above this size (default 1073741824, cvmfs_server\'s CVMFS_FILE_MBYTE_LIMIT)')
    .option('--min-chunk-size <bytes>', 'files above this size are chunked (default 4194304, as cvmfs_server)')
    .option('--avg-chunk-size <bytes>', 'average chunk size (default 8388608)')
    .option('--max-chunk-size <bytes>', 'largest chunk (default 16777216)')
    .action(action(async (dir: string, o: Json & { name: string; keys?: string; importKeys?: boolean; maxFileSize?: string; minChunkSize?: string; avgChunkSize?: string; maxChunkSize?: string; gc?: boolean }) => {
      const chunking = o.minChunkSize || o.avgChunkSize || o.maxChunkSize
        ? { min: int('--min-chunk-size', o.minChunkSize) ?? 4194304, avg: int('--avg-chunk-size', o.avgChunkSize) ?? 8388608, max: int('--max-chunk-size', o.maxChunkSize) ?? 16777216 }
        : undefined;
      const r = await initRepository(dir, { name: o.name, keysDir: o.keys, importKeys: o.importKeys === true, maxFileSize: int('--max-file-size', o.maxFileSize), chunking, garbageCollectable: o.gc === true });
      const cron = resignCronLine(r.dir);
      out(o, { ...r, cron }, () => {
        printLine(`created repository ${r.name} in ${r.dir} (revision 1, ${r.garbageCollectable ? 'garbage-collectable' : 'not garbage-collectable'})`);
        printLine(`keys: ${r.keysDir} (${r.keysCreated ? 'created' : 'imported'}); give sites ${r.publicKey}`);
        printLine('the whitelist expires in 30 days unless renewed (publish, or `repo resign`): add this line to the crontab of the publisher (crontab -e):');
        printLine(cron);
      });
    }));

  withJson(repo.command('resign <repo-dir>').description('re-sign the whitelist with the master key without publishing (as cvmfs_server resign)'))
    .option('--days <n>', 'validity in days (default: the repository\'s, 30)')
    .action(action(async (dir: string, o: Json & { days?: string }) => {
      const r = resignWhitelist(dir, { days: int('--days', o.days) });
      out(o, r, () => printLine(`re-signed the whitelist of ${r.name}: valid until ${r.expires} (${r.days} days)`));
    }));

  withJson(repo.command('set-gc <repo-dir>').description('mark a repository garbage-collectable (G yes from now on; cannot be undone)'))
    .action(action(async (dir: string, o: Json) => {
      const r = await setGarbageCollectable(dir);
      out(o, r, () => printLine(r.changed ? `${r.name} is garbage-collectable now (manifest of revision ${r.revision} re-signed with G yes)` : `${r.name} already was garbage-collectable`));
    }));

  withJson(repo.command('publish <repo-dir> <source-dir>').description('replace a path in the repository with a directory tree (one new revision)'))
    .requiredOption('--path <path-in-repo>', 'path inside the repository, e.g. containers/fs/singularity/alma9')
    .option('--tag <name>', 'tag the new revision')
    .option('--message <text>', 'tag description')
    .option('--max-file-size <bytes>', 'refuse files above this size (default from the repository config)')
    .action(action(async (dir: string, src: string, o: Json & { path: string; tag?: string; message?: string; maxFileSize?: string }) => {
      const t0 = Date.now();
      const r = await publishTree(dir, src, o.path, { tag: o.tag, message: o.message, maxFileSize: int('--max-file-size', o.maxFileSize), onProgress: progress });
      const secs = (Date.now() - t0) / 1000;
      out(o, { ...r, seconds: secs }, () => printLine(`published ${r.path}: revision ${r.revision}${r.tag ? ` (tag ${r.tag})` : ''}, ${r.tree.files} files (${r.filesReused} unchanged), ${r.catalogsWritten} catalogs written${r.catalogsPatched ? ` (${r.catalogsPatched} by patching the previous one)` : ''}, ${secs.toFixed(1)} s`));
    }));

  withJson(repo.command('rm <repo-dir> <path>').description('remove a path (one new revision)'))
    .option('--tag <name>', 'tag the new revision')
    .action(action(async (dir: string, p: string, o: Json & { tag?: string }) => {
      const r = await removePath(dir, p, { tag: o.tag, onProgress: progress });
      out(o, r, () => printLine(`removed ${p}: revision ${r.revision}`));
    }));

  withJson(repo.command('link <repo-dir> <path> <target>').description('create or atomically switch a symlink (one new revision)'))
    .option('--tag <name>', 'tag the new revision')
    .option('--message <text>', 'tag description')
    .option('--require-ready <percent>', 'refuse unless this share of nodes can run the new target (probes/readiness.ts; needs --results)')
    .option('--results <store>', 'probe results store (`gridforge probe serve`) for --require-ready')
    .action(action(async (dir: string, p: string, target: string, o: Json & { tag?: string; message?: string; requireReady?: string; results?: string }) => {
      if (o.requireReady !== undefined || o.results !== undefined) {
        const { checkLinkReadiness, parsePercent } = await import('../../probes/index.ts');
        if (o.requireReady === undefined || o.results === undefined) throw new UsageError('--require-ready and --results go together', { where: o.results === undefined ? '--results' : '--require-ready', hint: 'e.g. --require-ready 95 --results sitesonar.db' });
        const ready = await checkLinkReadiness({ repoDir: dir, linkPath: p, target, results: o.results, percent: parsePercent(o.requireReady) });
        progress(`readiness: ${ready.ready} of ${ready.nodes} nodes (${ready.percent}%) can run ${target}, ${o.requireReady}% required`);
      }
      const r = await link(dir, p, target, { tag: o.tag, message: o.message, onProgress: progress });
      out(o, r, () => printLine(`${p} -> ${target}: revision ${r.revision}${r.tag ? ` (tag ${r.tag})` : ''}`));
    }));

  withJson(repo.command('tags <repo-dir>').description('list tags and recent revisions'))
    .action(action(async (dir: string, o: Json) => {
      const tags = listTags(dir);
      const revisions = listRevisions(dir, 20);
      out(o, { tags, revisions }, () => {
        printLine(formatTable(['tag', 'revision', 'root catalog', 'time', 'description'], tags.map((t) => [t.name, t.revision, t.hash, new Date(t.timestamp * 1000).toISOString(), t.description])));
      });
    }));

  withJson(repo.command('tag <repo-dir> <name>').description('tag a revision (default: the current one)'))
    .option('--revision <n>', 'revision number to tag')
    .option('--message <text>', 'tag description')
    .action(action(async (dir: string, name: string, o: Json & { revision?: string; message?: string }) => {
      const t = await tagRevision(dir, name, { revision: int('--revision', o.revision), message: o.message });
      out(o, t, () => printLine(`tag ${t.name} -> revision ${t.revision} (${t.hash})`));
    }));

  withJson(repo.command('rollback <repo-dir>').description('publish the tagged revision as a new revision'))
    .requiredOption('--tag <name>', 'tag to roll back to')
    .action(action(async (dir: string, o: Json & { tag: string }) => {
      const r = await rollback(dir, o.tag);
      out(o, r, () => printLine(`rolled back to ${r.tag} (revision ${r.restoredRevision}) as revision ${r.revision}`));
    }));

  withJson(repo.command('diff <repo> <tagA> <tagB>').description('paths added, removed or modified between two tags'))
    .option('--public-key <file>', 'master public key (default: the keys dir outside the repository, see cvmfs-publish/README.md)')
    .action(action(async (dir: string, a: string, b: string, o: Json & { publicKey?: string }) => {
      const d = await diffTags(dir, a, b, { publicKey: o.publicKey });
      out(o, d, () => {
        if (d.length === 0) printLine('no differences');
        for (const e of d) printLine(`${e.change === 'added' ? '+' : e.change === 'removed' ? '-' : 'M'} ${e.path}${e.what ? `  (${e.what})` : ''}`);
      });
    }));

  withJson(repo.command('ls <repo> [path]').description('list a directory (repo dir or http URL)'))
    .option('--tag <name>', 'read this tag instead of the current revision')
    .option('--public-key <file>', 'master public key (default: the keys dir outside the repository, see cvmfs-publish/README.md)')
    .action(action(async (dir: string, p: string | undefined, o: Json & { tag?: string; publicKey?: string }) => {
      const r = await openRepository(dir, { tag: o.tag, publicKey: o.publicKey });
      const list = await r.ls(p ?? '');
      out(o, list, () => printLine(formatTable(['mode', 'uid', 'gid', 'size', 'mtime', 'name'], list.map((e) => [mode(e.mode, e.type), e.uid, e.gid, e.size, new Date(e.mtime * 1000).toISOString(), `${e.path.slice(e.path.lastIndexOf('/') + 1)}${e.target ? ` -> ${e.target}` : ''}${e.nestedCatalog ? ' [catalog]' : ''}`]))));
    }));

  withJson(repo.command('cat <repo> <path>').description('print a file of the repository'))
    .option('--tag <name>', 'read this tag instead of the current revision')
    .option('--public-key <file>', 'master public key (default: the keys dir outside the repository, see cvmfs-publish/README.md)')
    .action(action(async (dir: string, p: string, o: Json & { tag?: string; publicKey?: string }) => {
      const r = await openRepository(dir, { tag: o.tag, publicKey: o.publicKey });
      const data = await r.readFile(p);
      if (o.json) printJson({ path: p, size: data.length, base64: data.toString('base64') });
      else process.stdout.write(data);
    }));

  withJson(repo.command('checkout <repo> <dest>').description('materialise a revision as a plain directory tree'))
    .option('--tag <name>', 'tag to check out (default: current revision)')
    .option('--path <path>', 'only this subtree')
    .option('--keep-setuid', 'keep setuid/setgid bits from the catalog (default: stripped)')
    .option('--public-key <file>', 'master public key (default: the keys dir outside the repository, see cvmfs-publish/README.md)')
    .action(action(async (dir: string, dest: string, o: Json & { tag?: string; path?: string; publicKey?: string; keepSetuid?: boolean }) => {
      const r = await checkout(dir, dest, { tag: o.tag, path: o.path, publicKey: o.publicKey, keepSetuid: o.keepSetuid === true });
      out(o, r, () => printLine(`checked out revision ${r.revision} into ${r.dest}: ${r.files} files, ${r.dirs} dirs, ${r.symlinks} symlinks`));
    }));

  withJson(repo.command('verify <repo-dir>').description('check every signature, object hash and catalog invariant'))
    .option('--public-key <file>', 'master public key (default: the keys dir outside the repository, see cvmfs-publish/README.md)')
    .option('--strict', 'also fail (exit 1) on warnings, e.g. a whitelist that expires within 48 hours')
    .action(action(async (dir: string, o: Json & { publicKey?: string; strict?: boolean }) => {
      progress(`verifying ${dir}`);
      const r = await verifyRepository(dir, { publicKey: o.publicKey });
      for (const w of r.warnings) process.stderr.write(`warning: ${w.where}: ${w.problem}\n`);
      if (r.ok && o.strict && r.warnings.length > 0) {
        out(o, r, () => {});
        process.stderr.write(`error: verify --strict: ${r.warnings.length} warning(s) in ${dir}\n`);
        return 1;
      }
      out(o, r, () => {
        if (r.ok) printLine(`ok: ${r.name} revision ${r.revision}: ${r.checked.revisions} revisions, ${r.checked.catalogs} catalogs, ${r.checked.entries} entries, ${r.checked.objects} objects; whitelist valid until ${r.whitelistExpires}`);
        else for (const p of r.problems) printLine(`${p.where}: ${p.problem}`);
      });
      if (!r.ok) process.stderr.write(`error: verify found ${r.problems.length} problem(s) in ${dir}\n`);
      return r.ok ? 0 : 1;
    }));

  withJson(repo.command('gc <repo-dir>').description('remove objects that no tagged or recent revision references'))
    .option('--keep-revisions <n>', 'also keep the last N revisions', '3')
    .option('--dry-run', 'only report')
    .action(action(async (dir: string, o: Json & { keepRevisions: string; dryRun?: boolean }) => {
      const r = await garbageCollect(dir, { keepRevisions: int('--keep-revisions', o.keepRevisions), dryRun: o.dryRun });
      out(o, r, () => printLine(`${r.dryRun ? 'would remove' : 'removed'} ${r.removed} objects (${r.bytesFreed} bytes), kept ${r.kept}; revisions kept: ${r.keptRevisions.join(', ')}`));
    }));

  withJson(repo.command('serve <repo-dir>').description('serve the repository over HTTP (until interrupted)'))
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--port <n>', 'port (0 = any free port)', '8000')
    .action(action(async (dir: string, o: Json & { host: string; port: string }) => {
      const { readHead } = await import('../../cvmfs-publish/index.ts');
      const { manifest } = readHead(dir);
      const s = await serveRepository(dir, { host: o.host, port: int('--port', o.port), log: (l) => progress(l) });
      out(o, { url: s.url, port: s.port, name: manifest.name }, () => printLine(`serving ${manifest.name} at ${s.url} (CVMFS_SERVER_URL=${s.url})`));
      await new Promise<void>((resolve) => {
        const stop = () => void s.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    }));

  withJson(repo.command('abort <repo-dir>').description('clear a stale transaction left by a killed publisher'))
    .option('--force', 'clear the lock even if its process seems alive')
    .action(action(async (dir: string, o: Json & { force?: boolean }) => {
      const r = abortTransaction(dir, { force: o.force });
      out(o, r, () => printLine(r.hadLock ? `cleared stale transaction ${r.lockOwner}; removed ${r.removedTempFiles} temp files` : `no transaction was open; removed ${r.removedTempFiles} temp files`));
    }));
}
