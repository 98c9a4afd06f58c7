/**
 * Publish an assembled runtime (assemble.ts) as one revision: `java/JDKs/i686/jdk-<version>/`,
 * `jdk-latest -> jdk-<version>`, and the `Java/<version>` modulefile (+ its explicit default) for
 * the given platform directory. Identical content already published -> no revision; different
 * content -> refused unless `force`.
 */
import { UsageError } from '../../base/errors.ts';
import { defaultFilePath, javaModuleContent, renderDefaultVersion } from '../jalien/content.ts';
import { applyPlanned, diffPlanned, diffTree, meta, openRepository, openTransaction } from '../jalien/repo-port.ts';
import { validateArch } from '../jalien/version.ts';
import { JDK_PARENT, type AssembledRuntime } from './assemble.ts';

export interface PublishJava32Options {
  arch: string;
  /** Switch jdk-latest and the Java module default to this version (default true). */
  makeLatest?: boolean;
  force?: boolean;
  tag?: string;
  onProgress?: (msg: string) => void;
}

export interface PublishJava32Result {
  version: string;
  path: string;
  latest?: string;
  modulefile: string;
  status: 'published' | 'replaced' | 'unchanged';
  revision?: number;
  rootHash?: string;
  differences?: string[];
}

export const JDK_LATEST = `${JDK_PARENT}/jdk-latest`;

export async function publishJava32(repoDir: string, rt: AssembledRuntime, opts: PublishJava32Options): Promise<PublishJava32Result> {
  const say = opts.onProgress ?? (() => {});
  const arch = validateArch(opts.arch);
  const makeLatest = opts.makeLatest !== false;
  const modulefile = javaModuleContent(arch, rt.version);
  const reader = await openRepository(repoDir);
  const latestNow = (await reader.stat(JDK_LATEST))?.target;
  let status: PublishJava32Result['status'] = 'published';
  let differences: string[] = [];
  if (await reader.stat(rt.repoPath)) {
    say(`java32: ${rt.repoPath} exists; comparing content`);
    differences = [...(await diffTree(reader, rt.repoPath, rt.dir)), ...(await diffPlanned(reader, [modulefile]))];
    if (!differences.length) {
      say(`java32: identical runtime already published at ${rt.repoPath}; nothing to do`);
      return { version: rt.version, path: rt.repoPath, latest: latestNow, modulefile: modulefile.path, status: 'unchanged' };
    }
    if (!opts.force) {
      throw new UsageError(`${rt.repoPath} is already published with different content (${differences.slice(0, 5).join(', ')}${differences.length > 5 ? ', ...' : ''})`, {
        where: `${repoDir}: ${rt.repoPath}`,
        hint: 'pass --force to replace it (or --jdk-version to publish it under another name)',
      });
    }
    status = 'replaced';
  }
  say(`java32: publishing ${rt.repoPath}${makeLatest ? ' and switching jdk-latest' : ''}`);
  const tx = await openTransaction(repoDir, { operation: `release java32 ${rt.version}`, onProgress: say });
  try {
    await tx.putTree(rt.repoPath, rt.dir);
    const mtime = Math.floor(Date.now() / 1000);
    await applyPlanned(tx, [modulefile], mtime);
    if (makeLatest) {
      await tx.symlink(JDK_LATEST, rt.name, meta(0o777, mtime));
      await applyPlanned(tx, [{ kind: 'file', path: defaultFilePath(arch, 'Java'), mode: 0o644, data: renderDefaultVersion('Java', rt.version) }], mtime);
    }
    const r = await tx.commit({ tag: opts.tag, message: `Java runtime ${rt.version} (i686)${makeLatest ? ', jdk-latest' : ''}` });
    return {
      version: rt.version, path: rt.repoPath, latest: makeLatest ? rt.name : latestNow, modulefile: modulefile.path, status,
      revision: r.revision, rootHash: r.rootHash, differences: differences.length ? differences : undefined,
    };
  } catch (err) {
    await tx.abort().catch(() => {});
    throw err;
  }
}
