/** Mail and approval: OCRA challenge–response codes, notification mails, approval replies. */
export {
  generateOcra,
  parseOcraSuite,
  ocraTimeSteps,
  codesEqual,
  type OcraSuite,
  type OcraInput,
} from './ocra.ts';
export { canonicalDecision, parseDecision, type Decision } from './decision.ts';
export {
  approvalSuite,
  approvalQuestion,
  challengePattern,
  computeApprovalCode,
  verifyApprovalCode,
  parseAdminSecret,
  type ComputeCodeOptions,
  type VerifyCodeOptions,
} from './approval-code.ts';
export { mailSchema } from './schema.ts';
export {
  issueChallenge,
  findChallenge,
  consumeChallenge,
  listChallenges,
  recordFailedAttempt,
  type Challenge,
  type ChallengeState,
} from './challenges.ts';
export {
  verifyApproval,
  pendingApprovals,
  markApprovalApplied,
  DEFAULT_MAX_FAILED_ATTEMPTS,
  type PendingApproval,
  rejectionText,
  type ApprovalAdmin,
  type ApprovalVerdict,
  type RejectionReason,
  type VerifyApprovalOptions,
} from './verify-approval.ts';
export {
  composeNotification,
  composeAnswer,
  type NotifiedPatch,
  type OutgoingMail,
  type ComposeNotificationOptions,
} from './messages.ts';
export {
  parseReply,
  authenticatedBy,
  extractFields,
  DEFAULT_MAX_REPLY_BYTES,
  type ParsedReply,
  type ParseReplyOptions,
  type ReplyRefusal,
} from './reply.ts';
export { signApprovalLink, verifyApprovalLink, type LinkClaims } from './link.ts';
export {
  createSmtpSender,
  createImapReader,
  type MailSender,
  type MailboxReader,
  defaultMailboxLimits,
  type IncomingMessage,
  type MailServerSettings,
  type MailboxLimits,
} from './transport.ts';
