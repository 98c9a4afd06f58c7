import type { Command } from 'commander';

export function registerBuild(image: Command): void {
  void image;
}
