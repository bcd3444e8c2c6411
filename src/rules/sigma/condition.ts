/**
 * The condition of a Sigma detection: search identifiers joined by `and`, `or`, `not` and
 * parentheses, and the quantifiers `1 of PATTERN`, `all of PATTERN`, `N of PATTERN` over
 * identifiers (`them` is every identifier not starting with `_`). Precedence, least binding
 * first: or, and, not, `x of`, parentheses. The aggregations of Sigma 1 (`| count() > 5`) and
 * `near` are refused: Sigma correlation rules replaced them.
 */
import { HadesError } from '../../common/errors.js';

export type SigmaCondition =
  | { readonly kind: 'id'; readonly name: string }
  | { readonly kind: 'of'; readonly count: number | 'all'; readonly pattern: string }
  | { readonly kind: 'and' | 'or'; readonly items: readonly SigmaCondition[] }
  | { readonly kind: 'not'; readonly expr: SigmaCondition };

const MAX_DEPTH = 64;

function tokens(text: string): string[] {
  return text.match(/[()|]|[^\s()|]+/g) ?? [];
}

const invalid = (message: string) => new HadesError('HADES_ERR_SIGMA_INVALID', message, { details: { detail: 'condition syntax' } });

export function parseSigmaCondition(text: string): SigmaCondition {
  const toks = tokens(text);
  if (toks.includes('|')) {
    throw new HadesError('HADES_ERR_SIGMA_CONDITION', `the condition '${text}' uses an aggregation ('| ...'), the Sigma 1 form that correlation rules replaced`, { details: { detail: 'aggregation' } });
  }
  if (toks.some((t) => t.toLowerCase() === 'near')) {
    throw new HadesError('HADES_ERR_SIGMA_CONDITION', `the condition '${text}' uses 'near', the Sigma 1 form that temporal correlation rules replaced`, { details: { detail: 'near' } });
  }
  let i = 0;
  const peek = () => toks[i]?.toLowerCase();
  const next = () => toks[i++];
  const expect = (what: string) => {
    if (peek() !== what) throw invalid(`the condition '${text}' has ${toks[i] === undefined ? 'nothing' : `'${toks[i]}'`} where '${what}' is expected`);
    i++;
  };

  const orExpr = (depth: number): SigmaCondition => {
    if (depth > MAX_DEPTH) throw invalid(`the condition '${text}' nests deeper than ${MAX_DEPTH} levels`);
    const items = [andExpr(depth)];
    while (peek() === 'or') {
      i++;
      items.push(andExpr(depth));
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  };
  const andExpr = (depth: number): SigmaCondition => {
    const items = [unary(depth)];
    while (peek() === 'and') {
      i++;
      items.push(unary(depth));
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  };
  const unary = (depth: number): SigmaCondition => {
    if (peek() === 'not') {
      i++;
      if (depth > MAX_DEPTH) throw invalid(`the condition '${text}' nests deeper than ${MAX_DEPTH} levels`);
      return { kind: 'not', expr: unary(depth + 1) };
    }
    return primary(depth);
  };
  const primary = (depth: number): SigmaCondition => {
    const t = peek();
    if (t === undefined) throw invalid(`the condition '${text}' ends where a search identifier is expected`);
    if (t === '(') {
      i++;
      const inner = orExpr(depth + 1);
      expect(')');
      return inner;
    }
    if (t === ')' || t === 'and' || t === 'or' || t === 'of') throw invalid(`the condition '${text}' has '${toks[i]}' where a search identifier is expected`);
    if (toks[i + 1]?.toLowerCase() === 'of') {
      const quantifier = next()!;
      i++;
      const target = next();
      if (target === undefined || target === '(' || target === ')') throw invalid(`the condition '${text}' has '${quantifier} of' without a pattern or 'them'`);
      const q = quantifier.toLowerCase();
      const count = q === 'all' ? 'all' : q === 'any' ? 1 : /^\d+$/.test(q) ? Number(q) : NaN;
      if (Number.isNaN(count) || count === 0) throw invalid(`the condition '${text}' has '${quantifier} of': the quantifier is 1, any, all or a count`);
      return { kind: 'of', count, pattern: target.toLowerCase() === 'them' ? 'them' : target };
    }
    return { kind: 'id', name: next()! };
  };

  const result = orExpr(0);
  if (i < toks.length) throw invalid(`the condition '${text}' has '${toks[i]}' after a complete expression`);
  return result;
}

/** Search identifiers a quantifier's pattern names: `*` any run; `them` all but `_` ones. */
export function identifiersOf(pattern: string, names: readonly string[]): string[] {
  if (pattern === 'them') return names.filter((n) => !n.startsWith('_'));
  // `*` is the one wildcard of an identifier pattern (Sigma's specification); `?` is itself.
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return names.filter((n) => re.test(n));
}
