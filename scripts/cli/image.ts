/** `gridforge image ...`: build/render (image-build.ts), flatten/sandbox (image-flatten.ts) push (image-push.ts) and sync (image-sync.ts). */
import type { Command } from 'commander';
import { registerBuild } from './image-build.ts';
import { summaryOf } from './groups.ts';
import { registerFlatten } from './image-flatten.ts';
import { registerPush } from './image-push.ts';
import { registerSync } from './image-sync.ts';

export function register(program: Command): void {
  const image = program.command('image').description(summaryOf('image'));
  registerBuild(image);
  registerFlatten(image);
  registerPush(image);
  registerSync(image);
}
