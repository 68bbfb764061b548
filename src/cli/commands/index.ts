/** Every command group, registered in the order `understudy --help` lists them. */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerCommands(_program: Command, _ctx: CliContext): void {
  // Each group: registerXxxCommands(program, ctx) from ./xxx.ts
}
