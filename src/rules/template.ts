/**
 * Output templates: text with `{field}` placeholders, e.g.
 * `shell {process.executable} spawned by {process.parent.name}`. Fields are checked when the
 * rule loads; a field the event lacks renders as `<na>`, or as the text after a bar
 * (`{process.parent.name|no parent}`); `{{` and `}}` are literal braces.
 * Several values (`{process.args}`, `{ancestor.name}`) are joined by spaces.
 */
import { allValues, type EventRecord } from './accessor.js';
import { resolveField } from './fields.js';
import { compileError, type TextSource } from './problems.js';

export const MISSING = '<na>';

/** Extra values a template may name besides event fields (correlation rules: count, key). */
export type TemplateExtras = Readonly<Record<string, string | number>>;

export interface Template {
  readonly text: string;
  render(event: EventRecord, extras?: TemplateExtras): string;
}

type Part = string | ((e: EventRecord, extras: TemplateExtras | undefined) => string);

function show(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Compiles a template; `extraNames` are the placeholders allowed besides fields. */
export function compileTemplate(source: TextSource, extraNames: readonly string[] = []): Template {
  const text = source.text;
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{' && text[i + 1] === '{') {
      literal += '{';
      i += 2;
    } else if (c === '}' && text[i + 1] === '}') {
      literal += '}';
      i += 2;
    } else if (c === '}') {
      throw compileError('HADES_ERR_RULE_SYNTAX', "'}' without '{' in the output template (write '}}' for a brace)", source, i);
    } else if (c === '{') {
      const close = text.indexOf('}', i);
      if (close < 0) throw compileError('HADES_ERR_RULE_SYNTAX', "'{' without '}' in the output template (write '{{' for a brace)", source, i);
      // `{field|text}`: the text where the event lacks the field, instead of <na>.
      const inside = text.slice(i + 1, close);
      const bar = inside.indexOf('|');
      const name = (bar < 0 ? inside : inside.slice(0, bar)).trim();
      const missing = bar < 0 ? MISSING : inside.slice(bar + 1);
      if (literal) parts.push(literal);
      literal = '';
      if (extraNames.includes(name)) {
        parts.push((_e, extras) => {
          const v = extras?.[name];
          return v === undefined ? missing : String(v);
        });
      } else {
        const r = resolveField(name);
        if (!r.ok) {
          throw compileError('HADES_ERR_RULE_UNKNOWN_FIELD', `output template: ${r.message}${r.suggestion ? `; did you mean '${r.suggestion}'?` : ''}`, source, i + 1, r.suggestion);
        }
        const values = allValues(r.ref);
        parts.push((e) => {
          const vs = values(e);
          return vs.length === 0 ? missing : vs.map(show).join(' ');
        });
      }
      i = close + 1;
    } else {
      literal += c;
      i++;
    }
  }
  if (literal) parts.push(literal);
  return {
    text,
    render(event, extras) {
      let out = '';
      for (const p of parts) out += typeof p === 'string' ? p : p(event, extras);
      return out;
    },
  };
}
