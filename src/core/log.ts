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
  'linkToken',
  '*.linkToken',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** Query parameters that carry secrets (signed approval links, tokens, codes): their values never reach a log. */
const secretParams = new Set(['t', 'token', 'access_token', 'code', 'secret', 'password', 'sig', 'key']);

/** The URL with the value of every secret-bearing query parameter replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = decodeURIComponent((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ')).toLowerCase();
      return eq >= 0 && secretParams.has(name) ? `${pair.slice(0, eq)}=[redacted]` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

interface RequestLike {
  method?: string;
  url?: string;
  ip?: string;
  host?: string;
  socket?: { remotePort?: number };
}

/** How an HTTP request appears in a log line: method, URL with its secrets redacted, peer. Never headers. */
export function serializeRequest(req: RequestLike): Record<string, unknown> {
  return {
    method: req.method,
    url: req.url === undefined ? undefined : redactUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

export const logSerializers = { req: serializeRequest };

export function createLogger(options: { pretty?: boolean; level?: string; name?: string } = {}): Logger {
  const level = options.level ?? process.env.UNDERSTUDY_LOG_LEVEL ?? 'info';
  const base = { name: options.name ?? 'understudy' };
  if (options.pretty) {
    return pino({
      level,
      base,
      serializers: logSerializers,
      redact: { paths: redactedPaths, censor: '[redacted]' },
      transport: {
        target: 'pino-pretty',
        options: { colorize: process.stderr.isTTY, destination: 2, ignore: 'pid,hostname,name' },
      },
    });
  }
  return pino(
    { level, base, serializers: logSerializers, redact: { paths: redactedPaths, censor: '[redacted]' } },
    pino.destination(2),
  );
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
