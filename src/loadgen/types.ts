/** The load generator's vocabulary: what it is asked to do and what it reports. */

/**
 * How a request travels:
 * - `new-conn`: its own TCP connection, `Connection: close`.
 * - `keepalive`: GET over the pool of persistent connections.
 * - `upload`: POST to the upload path on its own connection, body paced over seconds.
 * - `write`: PUT of a unique key over the keep-alive pool; acknowledged keys are recorded.
 */
export type RequestKind = 'new-conn' | 'keepalive' | 'upload' | 'write';

/**
 * How a request ended:
 * - `ok`: a complete response with a status below `errorStatusFrom`.
 * - `refused`: the connection could not be opened (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH).
 * - `reset`: the connection broke before a complete response (ECONNRESET, EPIPE, closed early).
 * - `timeout`: no complete response within the request timeout.
 * - `http-error`: a response with status >= `errorStatusFrom`, a malformed response, or an upload whose
 *   echoed size/hash differs from what was sent.
 */
export type Outcome = 'ok' | 'refused' | 'reset' | 'timeout' | 'http-error';

export const requestKinds: readonly RequestKind[] = ['new-conn', 'keepalive', 'upload', 'write'];
export const outcomes: readonly Outcome[] = ['ok', 'refused', 'reset', 'timeout', 'http-error'];

/** Fractions of each kind; they need not sum to 1 (they are normalised). Default: all keepalive. */
export interface LoadMix {
  newconn?: number;
  keepalive?: number;
  upload?: number;
  write?: number;
}

export interface LoadOptions {
  /** `http://host[:port]/path`; new-conn and keepalive requests GET this path. */
  url: string;
  /** Requests per second, scheduled open-loop at fixed intervals. */
  rate: number;
  /** Stop scheduling after this long… */
  durationMs: number;
  /** …or after this many requests, whichever comes first. */
  maxRequests: number;
  mix?: LoadMix;
  /** Persistent connections in the keep-alive pool (default 16). */
  poolSize?: number;
  /** A request with no complete answer this long after it was dispatched is a timeout (default 5000). */
  timeoutMs?: number;
  /** The client closes pooled connections idle this long, before any server would (default 800). */
  idleTimeoutMs?: number;
  /** Upload body size in bytes (default 65536). */
  uploadBytes?: number;
  /** Time over which the upload body is sent (default 3000); added to the upload's timeout. */
  uploadDurationMs?: number;
  /** Number of chunks the upload body is sent in (default 10). */
  uploadChunks?: number;
  /** Default `/upload`. */
  uploadPath?: string;
  /** Writes PUT `${writePathPrefix}${key}` (default `/kv/`). */
  writePathPrefix?: string;
  /** Responses with a status at or above this are `http-error` (default 500). */
  errorStatusFrom?: number;
  /** Check the `{bytes, sha256}` an upload answer echoes against what was sent (default true). */
  verifyUploads?: boolean;
}

export interface ResolvedLoadOptions {
  url: string;
  host: string;
  port: number;
  hostHeader: string;
  path: string;
  rate: number;
  durationMs: number;
  maxRequests: number;
  mix: Required<LoadMix>;
  poolSize: number;
  timeoutMs: number;
  idleTimeoutMs: number;
  uploadBytes: number;
  uploadDurationMs: number;
  uploadChunks: number;
  uploadPath: string;
  writePathPrefix: string;
  errorStatusFrom: number;
  verifyUploads: boolean;
}

export interface RequestRecord {
  seq: number;
  kind: RequestKind;
  /** When the request was due, ms since the epoch (float). Latency counts from here. */
  scheduledAt: number;
  /** From the scheduled start to the complete response (or to the failure). */
  latencyMs: number;
  /** How late the generator itself dispatched the request (its own overload shows here). */
  lagMs: number;
  outcome: Outcome;
  status?: number;
  /** Errno-style code of a failure: ECONNREFUSED, ECONNRESET, EPIPE, HANGUP, TIMEOUT, EPROTO, UPLOAD_MISMATCH. */
  errorCode?: string;
  /** `X-Served-By` of the answer. */
  servedBy?: string;
  /** `X-Version` of the answer. */
  version?: string;
  /** The request went over a connection that had already carried a response. */
  reused?: boolean;
  /**
   * Times it was sent again because a reused keep-alive connection ended before one byte of the answer
   * (the server closed it as the request was on its way; see load.ts).
   */
  resent?: number;
}

export interface Mark {
  label: string;
  /** ms since the epoch (float), same clock as `scheduledAt`. */
  at: number;
}

export interface AckedWrite {
  key: string;
  value: string;
  path: string;
}

export interface LatencyStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface LoadSummary {
  total: number;
  /** Every outcome other than ok. */
  failed: number;
  byOutcome: Record<Outcome, number>;
  byKind: Record<RequestKind, { total: number; failed: number }>;
  byServedBy: Record<string, number>;
  byVersion: Record<string, number>;
  byStatus: Record<string, number>;
  byErrorCode: Record<string, number>;
  /** ok requests except uploads. */
  latency: LatencyStats;
  /** ok uploads (their latency includes the deliberate pacing time). */
  uploadLatency: LatencyStats;
  /** Requests whose latency was >= 1 s (uploads: beyond their pacing time) (e.g. a SYN retransmission), whatever their outcome. */
  delayedOver1s: number;
  /** Requests per second actually scheduled over the run. */
  achievedRate: number;
  /** p99 and max of how late the generator dispatched requests; large values mean it was overloaded. */
  lagP99Ms: number;
  lagMaxMs: number;
  connectionsOpened: number;
  ackedWrites: number;
  /** Requests sent again after a reused keep-alive connection closed before answering (not failures). */
  resent: number;
}

export interface LoadResult {
  options: ResolvedLoadOptions;
  /** ms since the epoch. */
  startedAt: number;
  endedAt: number;
  records: RequestRecord[];
  marks: Mark[];
  ackedWrites: AckedWrite[];
  summary: LoadSummary;
}

export interface LoadHandle {
  /** Resolves when the run has scheduled everything and every request has ended. */
  done: Promise<LoadResult>;
  /** Stops scheduling now; resolves (same value as `done`) once in-flight requests have ended. */
  stop(): Promise<LoadResult>;
  /** Records a timestamped marker (e.g. "switch-start") in the result. */
  mark(label: string): Mark;
}
