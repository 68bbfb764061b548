/**
 * The load generator: open-loop HTTP/1.1 traffic with exact per-request accounting, used to prove
 * "zero failed requests" across a traffic switch. See docs in load.ts and types.ts; the CLI is cli.ts.
 */
export { startLoad } from './load.ts';
export { resolveLoadOptions, parseMix } from './options.ts';
export { summarize, windowLatency, delayOf, latencyStats, quantile, type WindowLatency } from './summary.ts';
export { readSynRetransmits, parseSynRetransmits, type SynRetransmitOptions } from './syn-retransmits.ts';
export {
  outcomes,
  requestKinds,
  type AckedWrite,
  type LatencyStats,
  type LoadHandle,
  type LoadMix,
  type LoadOptions,
  type LoadResult,
  type LoadSummary,
  type Mark,
  type Outcome,
  type RequestKind,
  type RequestRecord,
  type ResolvedLoadOptions,
} from './types.ts';
export { ResponseParser, ResponseParseError, type ParsedResponse } from './response-parser.ts';
