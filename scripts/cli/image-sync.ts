/** `gridforge image sync`: argument parsing and printing only; the work is in release/image-sync/. */
import type { Command } from 'commander';
import { printJson, printLine, progress } from '../lib/output.ts';
import { action, withJson } from './command.ts';
import { MISSING_HARDLINK_HELP, missingHardlinkTargetOf } from './image-flatten.ts';
import { MISSING_HARDLINK_FLAG } from '../../images/layer/hardlink-policy.ts';
import type { Plan } from '../../release/image-sync/index.ts';

function printPlan(p: Plan): void {
  for (const t of p.write) printLine(`write   ${t.path}  <- ${t.source} (${t.platform})`);
  for (const l of p.link) printLine(`link    ${l.path} -> ${l.target}${l.old ? ` (was ${l.old})` : ''}`);
  for (const l of p.unlink) printLine(`unlink  ${l.path} (was -> ${l.target})`);
  for (const t of p.markUnlisted) printLine(`unlisted ${t} (removed after the grace period)`);
  for (const t of p.relisted) printLine(`listed again ${t}`);
  for (const r of p.remove) printLine(`remove  ${r.path} (unlisted since ${new Date(r.since).toISOString()})`);
  for (const w of p.waiting) printLine(`waiting ${w.path} (removable from ${new Date(w.removableAt).toISOString()})`);
  for (const m of p.missing) printLine(`missing ${m.image}:${m.tag} has no ${m.platform} image`);
  printLine(`unchanged ${p.unchanged.length} tree(s)`);
}

export function registerSync(image: Command): void {
  withJson(
    image
      .command('sync')
      .description('bring the registry images of a wish list into a repository: digest-addressed sandboxes, tag links, cleanup after a grace period')
      .argument('<wishlist.yaml>', 'the wish list (see release/image-sync/README.md)')
      .requiredOption('--repo <repo-dir>', 'the CernVM-FS repository to write')
      .option('--dry-run', 'resolve every image against its registry and print the plan; write nothing')
      .option('--grace <duration>', 'how long unlisted trees stay before removal (e.g. 2d, 36h, 0; default: the wish list, else 2d)')
      .option('--tmp-dir <dir>', 'where downloaded layers and spool files go')
      .option(`${MISSING_HARDLINK_FLAG} <refuse|empty>`, `${MISSING_HARDLINK_HELP}; overrides the wish list's missingHardlinkTarget for every image`),
  ).action(
    action(async (wishList: string, opts: { repo: string; dryRun?: boolean; grace?: string; tmpDir?: string; missingHardlinkTarget?: string; json?: boolean }) => {
      const policy = missingHardlinkTargetOf(opts.missingHardlinkTarget);
      const { syncImages } = await import('../../release/image-sync/index.ts');
      const r = await syncImages({ wishList, repo: opts.repo, dryRun: opts.dryRun, grace: opts.grace, tmpDir: opts.tmpDir, onProgress: progress, ...policy });
      if (opts.json) return printJson(r);
      printPlan(r.plan);
      if (r.dryRun) printLine('dry run: nothing written');
      else if (r.revision !== undefined) printLine(`revision ${r.revision}: ${r.written} tree(s) written`);
      else printLine('nothing changed');
    }),
  );
}
