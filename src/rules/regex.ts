/**
 * Regular expressions of rules run on RE2 (re2js, a pure JavaScript port): matching time is
 * linear in the text whatever the pattern, so a command line crafted by an attacker cannot
 * stall the engine the way `(a+)+b` or even `a+b` over a long text stalls a backtracking
 * engine (V8 takes about half a second for `a+b` over 30,000 `a`s). What RE2 cannot do in
 * linear time (back-references, look-around) is refused, and so are patterns whose compiled
 * program is too large (huge counted repetitions), with HADES_ERR_RULE_REGEX_TOO_EXPENSIVE.
 * Syntax is RE2's (docs/rules.md); matching is a search anywhere in the text: anchor with ^ and $.
 */
import { RE2JS } from 're2js';
import { compileError, type TextSource } from './problems.js';

/** Largest compiled program accepted, in RE2 instructions (`(\w{50}){20}` is about 1,000). */
export const MAX_REGEX_PROGRAM = 4000;

const BACKTRACKING = [
  { re: /\(\?<?[=!]/, what: 'look-around' },
  { re: /\\[1-9]|\\k</, what: 'a back-reference' },
];

export interface Regex {
  readonly pattern: string;
  test(text: string): boolean;
}

export function compileRegex(pattern: string, caseInsensitive: boolean, source?: TextSource, offset = 0): Regex {
  for (const { re, what } of BACKTRACKING) {
    if (re.test(pattern.replace(/\\\\/g, ''))) {
      throw compileError('HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', `regular expression '${pattern}' uses ${what}, which needs backtracking; rules run regular expressions in linear time only`, source, offset);
    }
  }
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern, caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (error) {
    const message = error instanceof Error ? error.message.replace(/^error parsing regexp: /, '') : String(error);
    if (/invalid repeat count/.test(message)) {
      throw compileError('HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', `regular expression '${pattern}': ${message} (at most 1000 repetitions)`, source, offset);
    }
    throw compileError('HADES_ERR_RULE_BAD_VALUE', `regular expression '${pattern}' is not valid: ${message}`, source, offset);
  }
  const size = compiled.programSize();
  if (size > MAX_REGEX_PROGRAM) {
    throw compileError('HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', `regular expression '${pattern}' compiles to ${size} instructions; the limit is ${MAX_REGEX_PROGRAM}`, source, offset);
  }
  return { pattern, test: (text) => compiled.test(text) };
}
