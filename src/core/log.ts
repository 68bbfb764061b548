/**
 * Structured logging (pino). The terminal gets a readable rendering, the daemon NDJSON.
 * Secrets are redacted by path wherever they appear in a log event.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export const redactedPaths = [
  'secret',
  'token',
  'password',
  'apiToken',
  '*.secret',
  '*.token',
  '*.password',
  '*.apiToken',
  'headers.authorization',
  'req.headers.authorization',
];

export function createLogger(options: { pretty?: boolean; level?: string; name?: string } = {}): Logger {
  const level = options.level ?? process.env.UNDERSTUDY_LOG_LEVEL ?? 'info';
  const base = { name: options.name ?? 'understudy' };
  if (options.pretty) {
    return pino({
      level,
      base,
      redact: { paths: redactedPaths, censor: '[redacted]' },
      transport: {
        target: 'pino-pretty',
        options: { colorize: process.stderr.isTTY, destination: 2, ignore: 'pid,hostname,name' },
      },
    });
  }
  return pino({ level, base, redact: { paths: redactedPaths, censor: '[redacted]' } }, pino.destination(2));
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
