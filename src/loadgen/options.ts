/** Validates LoadOptions once into ResolvedLoadOptions, and parses the CLI's `--mix` text. */
import { UnderstudyError } from '../core/index.ts';
import type { LoadMix, LoadOptions, ResolvedLoadOptions } from './types.ts';

function invalid(message: string, hint: string): UnderstudyError {
  return new UnderstudyError('INVALID_ARGUMENT', `load generator: ${message}`, { hint });
}

function positive(
  name: string,
  value: number | undefined,
  fallback: number,
  options: { integer?: boolean; min?: number } = {},
): number {
  const resolved = value ?? fallback;
  const min = options.min ?? Number.MIN_VALUE;
  if (!Number.isFinite(resolved) || resolved < min || (options.integer && !Number.isInteger(resolved))) {
    throw invalid(
      `${name} must be ${options.integer ? 'an integer' : 'a number'} ${options.min === undefined ? '> 0' : `>= ${options.min}`}, got ${String(value)}`,
      `Pass a valid ${name}.`,
    );
  }
  return resolved;
}

export function resolveLoadOptions(options: LoadOptions): ResolvedLoadOptions {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw invalid(`url ${JSON.stringify(options.url)} is not a URL`, 'Use http://host[:port]/path.');
  }
  if (url.protocol !== 'http:')
    throw invalid(`url ${options.url} is not http://`, 'Only plain HTTP/1.1 is supported.');
  const mix = resolveMix(options.mix ?? { keepalive: 1 });
  return {
    url: url.href,
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 80,
    hostHeader: url.host,
    path: `${url.pathname}${url.search}`,
    rate: positive('rate', options.rate, 0),
    durationMs: positive('durationMs', options.durationMs, 0),
    maxRequests: positive('maxRequests', options.maxRequests, 0, { integer: true, min: 1 }),
    mix,
    poolSize: positive('poolSize', options.poolSize, 16, { integer: true, min: 1 }),
    timeoutMs: positive('timeoutMs', options.timeoutMs, 5000),
    idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs, 800),
    uploadBytes: positive('uploadBytes', options.uploadBytes, 65536, { integer: true, min: 0 }),
    uploadDurationMs: positive('uploadDurationMs', options.uploadDurationMs, 3000, { min: 0 }),
    uploadChunks: positive('uploadChunks', options.uploadChunks, 10, { integer: true, min: 1 }),
    uploadPath: options.uploadPath ?? '/upload',
    writePathPrefix: options.writePathPrefix ?? '/kv/',
    errorStatusFrom: positive('errorStatusFrom', options.errorStatusFrom, 500, { integer: true, min: 100 }),
    verifyUploads: options.verifyUploads ?? true,
  };
}

function resolveMix(mix: LoadMix): Required<LoadMix> {
  const raw = {
    newconn: mix.newconn ?? 0,
    keepalive: mix.keepalive ?? 0,
    upload: mix.upload ?? 0,
    write: mix.write ?? 0,
  };
  const values = Object.values(raw);
  if (values.some((v) => !Number.isFinite(v) || v < 0))
    throw invalid(
      `mix fractions must be >= 0, got ${JSON.stringify(mix)}`,
      'e.g. newconn=0.3,keepalive=0.6,upload=0.1',
    );
  const sum = values.reduce((a, b) => a + b, 0);
  if (sum <= 0) throw invalid('mix has no positive fraction', 'e.g. newconn=0.3,keepalive=0.6,upload=0.1');
  return {
    newconn: raw.newconn / sum,
    keepalive: raw.keepalive / sum,
    upload: raw.upload / sum,
    write: raw.write / sum,
  };
}

/** Parses `newconn=0.3,keepalive=0.6,upload=0.1,write=0` into a LoadMix. */
export function parseMix(text: string): LoadMix {
  const mix: LoadMix = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, value] = part.split('=');
    if (name !== 'newconn' && name !== 'keepalive' && name !== 'upload' && name !== 'write') {
      throw invalid(
        `unknown mix kind ${JSON.stringify(name)}`,
        'Kinds are newconn, keepalive, upload, write.',
      );
    }
    const fraction = Number(value);
    if (value === undefined || !Number.isFinite(fraction))
      throw invalid(`mix ${part} has no number`, 'Write kind=fraction, e.g. keepalive=0.6.');
    mix[name] = fraction;
  }
  return mix;
}
