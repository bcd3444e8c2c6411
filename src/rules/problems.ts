/**
 * What the rule loader reports instead of throwing: every problem of every file, each with its
 * code, file, line and column, in the manner of a compiler. Warnings do not stop a rule from
 * loading; errors skip the rule (or the file, for YAML errors) and nothing else.
 */
import { HadesError, type ErrorCode } from '../common/errors.js';

export type ProblemSeverity = 'error' | 'warning';

export interface RuleProblem {
  readonly code: ErrorCode;
  readonly severity: ProblemSeverity;
  /** The file's name as given to loadRules. */
  readonly file: string;
  /** 1-based position in the file, when the problem maps to one. */
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
  /** The rule, macro or list concerned, when there is one. */
  readonly rule?: string;
  /** The closest known name, for unknown names. */
  readonly suggestion?: string;
}

/** Longest problem message: one that quotes a huge condition is cut, its length said. */
const MAX_MESSAGE_CHARS = 1000;

export function cutMessage(message: string): string {
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}… (${message.length} characters)` : message;
}

/** Problems listed at most: a file of a thousand broken rules gives a readable list, not a flood. */
export const MAX_PROBLEMS = 1000;

/**
 * At most `max` problems, errors before warnings (a thousand unused-macro warnings do not hide an
 * error), in their order, then one HADES_ERR_RULE_TOO_MANY_PROBLEMS that counts the others (an
 * error when they hold one) at the position of the first of them.
 */
export function capProblems(problems: readonly RuleProblem[], max = MAX_PROBLEMS): RuleProblem[] {
  if (problems.length <= max) return [...problems];
  const errorCount = problems.filter((p) => p.severity === 'error').length;
  let warningsKept = Math.max(0, max - errorCount);
  let errorsKept = max - warningsKept;
  const kept: RuleProblem[] = [];
  const rest: RuleProblem[] = [];
  for (const p of problems) {
    const keep = p.severity === 'error' ? errorsKept-- > 0 : warningsKept-- > 0;
    (keep ? kept : rest).push(p);
  }
  const errors = rest.filter((p) => p.severity === 'error').length;
  const first = rest[0]!;
  const more: RuleProblem = {
    code: 'HADES_ERR_RULE_TOO_MANY_PROBLEMS',
    severity: errors > 0 ? 'error' : 'warning',
    file: first.file,
    ...(first.line !== undefined ? { line: first.line, column: first.column ?? 1 } : {}),
    message: `${rest.length} more problems (${errors} errors, ${rest.length - errors} warnings) are not listed, the first of them here; the ${max} listed are errors first`,
  };
  return [...kept, more];
}

/** `file:line:column: error CODE: message`, the form editors and CI logs link to. */
export function formatProblem(p: RuleProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  return `${where}: ${p.severity} ${p.code}: ${p.message}`;
}

/** One HadesError for callers that must refuse a rule set with errors (e.g. a CLI check). */
export function rulesError(problems: readonly RuleProblem[]): HadesError {
  const errors = problems.filter((p) => p.severity === 'error');
  const first = errors[0] ?? problems[0];
  const code = first?.code ?? 'HADES_ERR_RULE_INVALID';
  const count = errors.length === 1 ? 'a problem' : `${errors.length} problems`;
  return new HadesError(code, `the rules have ${count}: ${errors.map(formatProblem).join('; ')}`, { details: { problems } });
}

/** A position inside a file, resolved lazily: most offsets are never reported. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/**
 * A piece of rule text (a condition, a template) and where it sits in its file. `locate` maps an
 * offset in the text to a file position, accounting for YAML quoting and indentation.
 */
export interface TextSource {
  readonly file: string;
  readonly text: string;
  locate(offset: number): Position;
  /**
   * The comment YAML took off the end of a plain value (`a contains " #x"` is `a contains "`
   * and the comment `#x"`): a syntax error of the text is most likely that cut.
   */
  readonly cutComment?: string;
}

/** A source for text that is not inside a file (tests, programmatic rules). */
export function plainSource(text: string, file = '<inline>'): TextSource {
  return {
    file,
    text,
    locate(offset) {
      let line = 1;
      let column = 1;
      for (let i = 0; i < offset && i < text.length; i++) {
        if (text.charCodeAt(i) === 10) {
          line++;
          column = 1;
        } else column++;
      }
      return { line, column };
    },
  };
}

/**
 * Thrown inside one compilation stage, caught by the loader and turned into a RuleProblem with
 * the file position of `offset` in `source`.
 */
export class RuleCompileError extends HadesError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly source: TextSource | undefined,
    readonly offset: number,
    readonly suggestion?: string,
  ) {
    super(code, message);
    this.name = 'RuleCompileError';
  }
}

export function compileError(code: ErrorCode, message: string, source: TextSource | undefined, offset = 0, suggestion?: string): RuleCompileError {
  return new RuleCompileError(code, message, source, offset, suggestion);
}
