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
  type Challenge,
  type ChallengeState,
} from './challenges.ts';
export {
  verifyApproval,
  rejectionText,
  type ApprovalAdmin,
  type ApprovalVerdict,
  type RejectionReason,
  type VerifyApprovalOptions,
} from './verify-approval.ts';
export {
  composeNotification,
  composeAnswer,
  parseReply,
  type NotifiedPatch,
  type OutgoingMail,
  type ParsedReply,
  type ComposeNotificationOptions,
} from './messages.ts';
export { signApprovalLink, verifyApprovalLink, type LinkClaims } from './link.ts';
export {
  createSmtpSender,
  createImapReader,
  type MailSender,
  type MailboxReader,
  type IncomingMessage,
  type MailServerSettings,
} from './transport.ts';
