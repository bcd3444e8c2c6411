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

/**
 * What in a pattern needs backtracking (a look-around, a back-reference), read as RE2 reads the
 * pattern: an escaped character (`\(?=` is a parenthesis and `?=`), a character class (`[(?!]`
 * holds three characters) and a quoted `\Q...\E` stretch are text, not syntax.
 */
export function backtrackingFeature(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        if (end === -1) return undefined;
        i = end + 1;
        continue;
      }
      if (!inClass && next !== undefined && ((next >= '1' && next <= '9') || (next === 'k' && pattern[i + 2] === '<'))) return 'a back-reference';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      // A ']' first in a class (after '^' or not) is one of its characters.
      if (pattern[i + 1] === '^') i++;
      if (pattern[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      const a = pattern[i + 2];
      if (a === '=' || a === '!' || (a === '<' && (pattern[i + 3] === '=' || pattern[i + 3] === '!'))) return 'look-around';
    }
  }
  return undefined;
}

export interface Regex {
  readonly pattern: string;
  test(text: string): boolean;
}

export function compileRegex(pattern: string, caseInsensitive: boolean, source?: TextSource, offset = 0): Regex {
  const what = backtrackingFeature(pattern);
  if (what !== undefined) {
    throw compileError('HADES_ERR_RULE_REGEX_TOO_EXPENSIVE', `regular expression '${pattern}' uses ${what}, which needs backtracking; rules run regular expressions in linear time only`, source, offset);
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
