// The top-level listing comes from scripts/cli/groups.ts without loading any group: each group
// must register exactly the command and summary the table lists, or --help would lie.
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { GROUPS, type GroupName } from '../../scripts/cli/groups.ts';
import { buildProgram, groupOf } from '../../scripts/cli/main.ts';

describe('CLI command groups', () => {
  it('each group registers the command and summary its table row lists', async () => {
    for (const name of Object.keys(GROUPS) as GroupName[]) {
      const program = new Command('gridforge');
      (await GROUPS[name].load()).register(program);
      const cmd = program.commands.find((c) => c.name() === name);
      expect(cmd, name).toBeDefined();
      expect(cmd!.description()).toBe(GROUPS[name].summary);
    }
  });

  it('the listing without a group names every group; a named group is loaded whole', async () => {
    const top = await buildProgram();
    expect(top.commands.map((c) => c.name())).toEqual(Object.keys(GROUPS));
    expect(top.commands.every((c) => c.commands.length === 0)).toBe(true);
    const repo = await buildProgram('repo');
    expect(repo.commands.find((c) => c.name() === 'repo')!.commands.map((c) => c.name())).toContain('publish');
  });

  it('finds the group after --config and after help', () => {
    expect(groupOf(['node', 'gf', '--config', 'x.yaml', 'repo', 'tags'])).toBe('repo');
    expect(groupOf(['node', 'gf', 'help', 'site'])).toBe('site');
    expect(groupOf(['node', 'gf', '--help'])).toBeUndefined();
    expect(groupOf(['node', 'gf', 'bogus'])).toBeUndefined();
  });
});
