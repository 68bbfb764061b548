/** Every command group, registered in the order `understudy --help` lists them. */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { registerPatchCommands } from './patch.ts';
import { registerFeedCommands } from './feed.ts';
import { registerUpdatesCommand } from './updates.ts';
import { registerMonitorCommands } from './monitor.ts';
import { registerServeCommands } from './serve.ts';
import { registerApproveCodeCommands } from './approve-code.ts';
import { registerHostCommands } from './host.ts';
import { registerImageCommands } from './image.ts';
import { registerLcCommands } from './lc.ts';
import { registerApplyCommand } from './apply.ts';
import { registerRunCommands } from './run.ts';
import { registerDemoCommand } from './demo.ts';
import { registerDiskCommands } from './disk.ts';
import { registerSwitchCommands } from './switch.ts';
import { lcSwitchBinder } from './switch-binder.ts';
import { registerTokenCommands } from './token.ts';
import { registerControlCommands } from './control.ts';
import { registerAgentCommands } from './agent.ts';

export function registerCommands(program: Command, ctx: CliContext): void {
  // Each group: registerXxxCommands(program, ctx) from ./xxx.ts
  registerDemoCommand(program, ctx);
  registerHostCommands(program, ctx);
  registerImageCommands(program, ctx);
  registerLcCommands(program, ctx);
  registerApplyCommand(program, ctx);
  registerDiskCommands(program, ctx);
  registerSwitchCommands(program, ctx, lcSwitchBinder);
  registerPatchCommands(program, ctx);
  registerRunCommands(program, ctx);
  registerFeedCommands(program, ctx);
  registerUpdatesCommand(program, ctx);
  registerMonitorCommands(program, ctx);
  registerServeCommands(program, ctx);
  registerApproveCodeCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerControlCommands(program, ctx);
  registerAgentCommands(program, ctx);
}
