/**
 * `understudy approve-code <challenge> --decision …`: what an administrator runs on their own
 * terminal to answer a notification. The secret comes from --secret-file or
 * $UNDERSTUDY_APPROVAL_SECRET (never from the command line, where other users could see it).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { UnderstudyError } from '../../core/index.ts';
import { canonicalDecision, computeApprovalCode, parseAdminSecret, parseDecision } from '../../mail/index.ts';
import type { CliContext } from '../context.ts';

export function registerApproveCodeCommands(program: Command, ctx: CliContext): void {
  program
    .command('approve-code <challenge>')
    .description('compute the approval code (OCRA, RFC 6287) for a challenge from a notification mail')
    .option('--decision <decision>', '"approve all", "approve: <patch>, <patch>" or "reject"', 'approve all')
    .option(
      '--secret-file <file>',
      'file holding your approval secret (hex); default $UNDERSTUDY_APPROVAL_SECRET',
    )
    .action((challenge: string, o: { decision: string; secretFile?: string }) => {
      const text = o.secretFile
        ? fs.readFileSync(o.secretFile, 'utf8')
        : process.env.UNDERSTUDY_APPROVAL_SECRET;
      if (!text)
        throw new UnderstudyError('INVALID_ARGUMENT', 'No approval secret given', {
          hint: 'Pass --secret-file <file> or set UNDERSTUDY_APPROVAL_SECRET.',
        });
      const decision = parseDecision(o.decision);
      const code = computeApprovalCode({
        secret: parseAdminSecret(text, 'you'),
        challenge: challenge.trim().toLowerCase(),
        decision,
      });
      ctx.print({ challenge, decision: canonicalDecision(decision), code }, () =>
        [
          `Code: ${code}`,
          '',
          'Reply to the notification with:',
          `Challenge: ${challenge}`,
          `Decision: ${o.decision}`,
          `Code: ${code}`,
          '',
          'The code is valid for about 30 minutes.',
        ].join('\n'),
      );
    });
}
