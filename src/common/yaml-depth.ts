/**
 * A bound on how deeply a YAML text nests, checked before the text is parsed. The yaml library
 * parses and converts recursively: a text of ten thousand nested `[` overflows the stack, and in
 * Node 20 an overflow at the wrong moment (inside V8's regular expression compiler) ends the
 * process instead of throwing. Configurations, group configurations pushed through the API, rule
 * files and Sigma rules are all YAML from outside, so each is measured first.
 *
 * The measure reads the tokens of the yaml library's lexer, a state machine that does not recurse
 * (so quotes, comments and block scalars are read as the parser will read them). It is an upper
 * bound of the depth: open flow collections (`[`, `{`) are counted exactly, on top of the column
 * where the line that opened them starts its content, and a block level needs at least one more
 * column than its parent (`- - x` nests two sequences in four columns), so the column of a
 * line's first content (or of its last `-`, `?` or `:` when it has none) bounds its block
 * depth. Real files nest a few levels; the limit is far
 * from them and far from what overflows the stack.
 */
import { Lexer } from 'yaml';

export const MAX_YAML_DEPTH = 256;

/** The lexer's control tokens (document start, flow end, scalar, byte order mark): no text. */
const CONTROL = new Set(['\u0002', '\u0018', '\u001f', '\u{feff}']);
const INDICATORS = new Set(['-', '?', ':']);

/** Undefined when the text nests at most MAX_YAML_DEPTH deep; else the line where it goes deeper. */
export function yamlDepthProblem(text: string): { readonly line: number; readonly message: string } | undefined {
  let line = 1;
  let column = 0;
  /** Column of the current line's first content token; -1 until there is one. */
  let content = -1;
  let flow = 0;
  let base = 0;
  for (const token of new Lexer().lex(text)) {
    if (CONTROL.has(token)) continue;
    // A line of indicators and no content (`- - - ...`, `? ? ...`) nests a collection at each
    // one: bounded by its column as content is.
    if (content < 0 && flow === 0 && column > MAX_YAML_DEPTH && INDICATORS.has(token)) return tooDeep(line);
    if (content < 0 && token.trim() !== '' && !INDICATORS.has(token) && !token.startsWith('#')) {
      content = column;
      if (flow === 0 && content > MAX_YAML_DEPTH) return tooDeep(line);
    }
    if (token === '[' || token === '{') {
      if (flow === 0) base = content + 1;
      flow++;
      if (base + flow > MAX_YAML_DEPTH) return tooDeep(line);
    } else if ((token === ']' || token === '}') && flow > 0) {
      flow--;
    }
    const newline = token.lastIndexOf('\n');
    if (newline === -1) {
      column += token.length;
      continue;
    }
    for (let i = token.indexOf('\n'); i !== -1; i = token.indexOf('\n', i + 1)) line++;
    column = token.length - newline - 1;
    // A token that ends inside a line (a quoted scalar over several lines) was its content.
    content = column === 0 ? -1 : 0;
  }
  return undefined;
}

function tooDeep(line: number): { readonly line: number; readonly message: string } {
  return { line, message: `the YAML nests more than ${MAX_YAML_DEPTH} levels deep by line ${line} (counting indentation and open [ and {): refused before parsing` };
}
