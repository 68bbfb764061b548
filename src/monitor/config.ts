/**
 * The monitor's configuration file (YAML, default `<stateDir>/monitor.yaml`): API, mail servers,
 * administrators with their approval secrets, approval and auto-approval rules. Feeds live in the
 * store (`understudy feed add`). Every secret may be given inline or as `…File` (read at load).
 * Secrets are never logged: the resolved config keeps them in fields the logger redacts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UnderstudyError, isErrno, parseConfigYaml, requireStrongToken } from '../core/index.ts';
import { patchCategories, type PatchCategory } from '../catalogue/index.ts';
import { parseAdminSecret } from '../mail/index.ts';

const category = z.enum(patchCategories as [PatchCategory, ...PatchCategory[]]);
const secretOrFile = { secret: z.string().optional(), secretFile: z.string().optional() };
const server = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** Implicit TLS; otherwise STARTTLS, which is required. */
  secure: z.boolean().default(false),
  /** Plaintext allowed and certificates not verified: for tests against local servers only. */
  insecure: z.boolean().default(false),
  /** PEM file of the CA that signed the server's certificate, when not a system CA. */
  caFile: z.string().optional(),
  user: z.string().optional(),
  password: z.string().optional(),
  passwordFile: z.string().optional(),
});

const configSchema = z.object({
  api: z
    .object({
      listen: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8642),
      token: z.string().optional(),
      tokenFile: z.string().optional(),
      /** The daemon's URL as administrators reach it, for approval links. */
      publicUrl: z.string().url().optional(),
      linkSecret: z.string().optional(),
      linkSecretFile: z.string().optional(),
    })
    .default({ listen: '127.0.0.1', port: 8642 }),
  mail: z
    .object({
      from: z.string().min(3),
      smtp: server,
      imap: server
        .extend({
          mailbox: z.string().default('INBOX'),
          pollSeconds: z.number().positive().default(60),
          /** authserv-id of the receiving server's Authentication-Results; when set, replies must pass DKIM/DMARC there. */
          trustedAuthServId: z.string().min(1).optional(),
          /** Larger replies are refused unread. */
          maxMessageBytes: z
            .number()
            .int()
            .positive()
            .max(16 * 1024 * 1024)
            .default(128 * 1024),
          /** Messages read per poll at most; the rest wait for the next poll. */
          maxMessagesPerPoll: z.number().int().positive().max(1000).default(20),
        })
        .optional(),
    })
    .optional(),
  administrators: z
    .array(
      z.object({
        name: z.string().min(1),
        email: z.string().min(3),
        categories: z.array(category).optional(),
        ...secretOrFile,
      }),
    )
    .default([]),
  approval: z
    .object({
      challengeTtlHours: z.number().positive().default(72),
      codeWindowMinutes: z.number().int().positive().default(30),
      /** Wrong codes tried against one challenge before it is locked. */
      maxFailedAttempts: z.number().int().positive().max(100).default(5),
    })
    .default({ challengeTtlHours: 72, codeWindowMinutes: 30, maxFailedAttempts: 5 }),
  /** Approve automatically N days after a patch was first seen, per category. */
  autoApprove: z.partialRecord(category, z.number().nonnegative()).default({}),
  monitor: z
    .object({
      tickMs: z.number().int().positive().default(1000),
      /** A feed whose index has not been regenerated for this long is reported stale (frozen mirror?). */
      feedStaleAfterHours: z.number().positive().default(72),
    })
    .default({ tickMs: 1000, feedStaleAfterHours: 72 }),
});

export interface Administrator {
  name: string;
  email: string;
  /** Only patches of these categories are mailed to this administrator (all when absent). */
  categories: PatchCategory[] | null;
  secret: Buffer;
}

export interface MailServer {
  host: string;
  port: number;
  secure: boolean;
  insecure: boolean;
  ca: Buffer | null;
  user?: string;
  password?: string;
}

export interface ResolvedMonitorConfig {
  api: {
    listen: string;
    port: number;
    token: string | null;
    publicUrl: string | null;
    linkSecret: Buffer | null;
  };
  mail: {
    from: string;
    smtp: MailServer;
    imap:
      | (MailServer & {
          mailbox: string;
          pollSeconds: number;
          trustedAuthServId: string | null;
          maxMessageBytes: number;
          maxMessages: number;
        })
      | null;
  } | null;
  administrators: Administrator[];
  approval: { challengeTtlHours: number; codeWindowMinutes: number; maxFailedAttempts: number };
  autoApprove: Partial<Record<PatchCategory, number>>;
  monitor: { tickMs: number; feedStaleAfterHours: number };
}

export function defaultConfigPath(stateDir: string): string {
  return path.join(stateDir, 'monitor.yaml');
}

function readSecret(
  inline: string | undefined,
  file: string | undefined,
  base: string,
  what: string,
): string | undefined {
  if (inline !== undefined) return inline;
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(path.resolve(base, file), 'utf8').trim();
  } catch (error) {
    if (isErrno(error, 'ENOENT'))
      throw new UnderstudyError('CONFIG_INVALID', `The ${what} file ${file} does not exist`);
    throw error;
  }
}

function readFileOf(file: string, base: string, what: string): Buffer {
  try {
    return fs.readFileSync(path.resolve(base, file));
  } catch (error) {
    if (isErrno(error, 'ENOENT'))
      throw new UnderstudyError('CONFIG_INVALID', `The ${what} file ${file} does not exist`);
    throw error;
  }
}

function resolveServer(s: z.infer<typeof server>, base: string, what: string): MailServer {
  return {
    host: s.host,
    port: s.port,
    secure: s.secure,
    insecure: s.insecure,
    ca: s.caFile ? readFileOf(s.caFile, base, `${what} CA`) : null,
    user: s.user,
    password: readSecret(s.password, s.passwordFile, base, `${what} password`),
  };
}

/** Validates a parsed config object (paths in it are relative to `baseDir`). */
export function resolveMonitorConfig(raw: unknown, baseDir: string): ResolvedMonitorConfig {
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UnderstudyError(
      'CONFIG_INVALID',
      `Monitor configuration: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const c = parsed.data;
  const linkSecret = readSecret(c.api.linkSecret, c.api.linkSecretFile, baseDir, 'link secret');
  const token = readSecret(c.api.token, c.api.tokenFile, baseDir, 'API token') ?? null;
  if (token !== null) requireStrongToken(token, c.api.tokenFile ?? 'api.token');
  return {
    api: {
      listen: c.api.listen,
      port: c.api.port,
      token,
      publicUrl: c.api.publicUrl ?? null,
      linkSecret: linkSecret ? parseAdminSecret(linkSecret, 'the approval links') : null,
    },
    mail: c.mail
      ? {
          from: c.mail.from,
          smtp: resolveServer(c.mail.smtp, baseDir, 'SMTP'),
          imap: c.mail.imap
            ? {
                ...resolveServer(c.mail.imap, baseDir, 'IMAP'),
                mailbox: c.mail.imap.mailbox,
                pollSeconds: c.mail.imap.pollSeconds,
                trustedAuthServId: c.mail.imap.trustedAuthServId ?? null,
                maxMessageBytes: c.mail.imap.maxMessageBytes,
                maxMessages: c.mail.imap.maxMessagesPerPoll,
              }
            : null,
        }
      : null,
    administrators: c.administrators.map((a) => {
      const secret = readSecret(a.secret, a.secretFile, baseDir, `approval secret of ${a.name}`);
      if (!secret)
        throw new UnderstudyError(
          'CONFIG_INVALID',
          `Administrator ${a.name} has no secret (secret or secretFile)`,
        );
      return {
        name: a.name,
        email: a.email.toLowerCase(),
        categories: a.categories ?? null,
        secret: parseAdminSecret(secret, a.name),
      };
    }),
    approval: c.approval,
    autoApprove: c.autoApprove,
    monitor: c.monitor,
  };
}

/** Loads the config file; a missing file at the default path means "everything default". */
export function loadMonitorConfig(file: string, options: { required?: boolean } = {}): ResolvedMonitorConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT') && !options.required) return resolveMonitorConfig({}, path.dirname(file));
    if (isErrno(error, 'ENOENT'))
      throw new UnderstudyError('CONFIG_NOT_FOUND', `The monitor configuration ${file} does not exist`);
    throw error;
  }
  return resolveMonitorConfig(parseConfigYaml(text, `The monitor configuration ${file}`), path.dirname(file));
}
