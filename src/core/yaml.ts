/**
 * Reading a YAML configuration file written by a person: bounded in size, in nesting and in aliases,
 * and every way the parser can fail (syntax, an alias to nowhere, an alias bomb, an alias inside its own
 * anchor, which would make a cyclic value) is a CONFIG_INVALID naming the file, never a crash.
 */
import { isNode, parseDocument, visit, type Node } from 'yaml';
import { UnderstudyError } from './errors.ts';

const maxConfigBytes = 1024 * 1024;
const maxAliases = 100;
/** Flow collections nested deeper than this are refused before parsing (the parser recurses on them). */
const maxFlowDepth = 64;

/**
 * Block nesting deeper than this is refused before parsing. The yaml package parses and builds
 * documents recursively: thousands of nested block collections (`- - - …`, `? ? ? …`, `port:: port:: …`,
 * or ever deeper indentation) overflow the stack, and once the stack is that deep V8 can die outright
 * (a fatal "RegExpCompiler Allocation failed" when a regular expression is compiled there), which no
 * catch can turn into an error. A configuration needs a handful of levels.
 */
const maxBlockDepth = 64;

/**
 * An upper bound of the block nesting, in one linear pass without the parser: per line, the open
 * indentation levels plus every indicator that can open a level on that line (`- `, `? `, `: `).
 * Quotes and comments are not skipped, so text inside them can only count too much, never too little.
 */
function blockDepth(text: string): number {
  const indents: number[] = [];
  let deepest = 0;
  for (const line of text.split('\n')) {
    let start = 0;
    while (line[start] === ' ') start++;
    if (start === line.length || line[start] === '#') continue;
    while (indents.length > 0 && (indents[indents.length - 1] as number) >= start) indents.pop();
    indents.push(start);
    let indicators = 0;
    for (let i = start; i < line.length; i++) {
      const c = line[i];
      const next = line[i + 1];
      const endsToken = next === undefined || next === ' ' || next === '\t' || next === '\r';
      if (!endsToken) continue;
      if (c === ':') indicators++;
      else if ((c === '-' || c === '?') && (i === start || line[i - 1] === ' ' || line[i - 1] === '\t'))
        indicators++;
    }
    deepest = Math.max(deepest, indents.length + indicators);
  }
  return deepest;
}

/** Deepest nesting of [ and { in the text, ignoring quoted strings and comments; one linear pass. */
function flowDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let quote: string | null = null;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (comment) {
      if (c === '\n') comment = false;
    } else if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') comment = true;
    else if (c === '[' || c === '{') deepest = Math.max(deepest, ++depth);
    else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return deepest;
}

function invalid(file: string, why: string): UnderstudyError {
  return new UnderstudyError('CONFIG_INVALID', `${file}: not valid YAML: ${why}`);
}

/** Parses YAML text into plain data; throws CONFIG_INVALID naming `file` for anything wrong. */
export function parseConfigYaml(text: string, file: string): unknown {
  if (text.length > maxConfigBytes) throw invalid(file, `larger than ${maxConfigBytes} bytes`);
  if (flowDepth(text) > maxFlowDepth) throw invalid(file, `collections nested deeper than ${maxFlowDepth}`);
  if (blockDepth(text) > maxBlockDepth)
    throw invalid(file, `block collections nested deeper than ${maxBlockDepth}`);
  try {
    const doc = parseDocument(text, { prettyErrors: false });
    const first = doc.errors[0];
    if (first) {
      const line = first.linePos?.[0].line;
      throw invalid(file, `${line ? `line ${line}: ` : ''}${first.message.split('\n')[0] ?? ''}`);
    }
    let aliases = 0;
    let cyclic = false;
    visit(doc, {
      Alias(_key, node, path) {
        aliases++;
        if (path.some((p) => isNode(p) && (p as Node).anchor === node.source)) cyclic = true;
      },
    });
    if (aliases > maxAliases) throw invalid(file, `more than ${maxAliases} aliases`);
    if (cyclic) throw invalid(file, 'an alias refers to the node that contains it');
    return doc.toJS({ maxAliasCount: maxAliases });
  } catch (error) {
    // The yaml package throws ReferenceError for unresolved or excessive aliases, and a nesting its
    // recursive parser cannot hold (e.g. a long run of implicit keys) overflows the stack: RangeError.
    if (error instanceof ReferenceError || error instanceof TypeError || error instanceof RangeError)
      throw invalid(file, error.message.split('\n')[0] ?? 'unreadable');
    throw error;
  }
}
