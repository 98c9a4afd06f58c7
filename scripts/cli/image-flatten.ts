import type { Command } from 'commander';

export function registerFlatten(image: Command): void {
  void image;
}
