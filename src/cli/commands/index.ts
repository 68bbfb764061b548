/** Every command group, registered in the order `understudy --help` lists them. */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { registerPatchCommands } from './patch.ts';

export function registerCommands(program: Command, ctx: CliContext): void {
  // Each group: registerXxxCommands(program, ctx) from ./xxx.ts
  registerPatchCommands(program, ctx);
}
