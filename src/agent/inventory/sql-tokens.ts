/**
 * A small SQL scanner: the identifiers a statement names (bare, "double-quoted", `backticked`,
 * [bracketed]), with string literals and comments skipped, whether it uses `*`, and the pragmas
 * it runs. The engine uses it to tell tables which columns a query may read, to find tables when
 * EXPLAIN cannot, and to refuse pragmas before SQLite prepares them (it applies most of them then).
 */

export interface SqlNames {
  /** Identifiers, lower-cased, in order of first appearance. */
  readonly identifiers: readonly string[];
  /**
   * A `*` outside strings and comments (SELECT *, t.*, count(*)), or a NATURAL join (which
   * compares the columns both sides have without naming them): every column may be read.
   */
  readonly star: boolean;
  /**
   * Pragmas the statement runs, lower-cased: the name after a PRAGMA keyword (with or without a
   * schema; bare, quoted or a string), and the name of each pragma_NAME table-valued function.
   */
  readonly pragmas: readonly string[];
}

type Token = { readonly kind: 'word' | 'quoted' | 'string' | 'dot' | 'other'; readonly text: string };

export function scanSql(sql: string): SqlNames {
  const identifiers: string[] = [];
  const seen = new Set<string>();
  const tokens: Token[] = [];
  let star = false;
  const add = (name: string) => {
    const lower = name.toLowerCase();
    if (!seen.has(lower)) {
      seen.add(lower);
      identifiers.push(lower);
    }
  };
  const quoted = (i: number, close: string): number => {
    // A doubled closing quote stands for itself.
    let j = i + 1;
    let text = '';
    while (j < sql.length) {
      if (sql[j] === close) {
        if (sql[j + 1] === close && close !== ']') {
          text += close;
          j += 2;
          continue;
        }
        break;
      }
      text += sql[j];
      j++;
    }
    if (close !== "'") add(text);
    tokens.push({ kind: close === "'" ? 'string' : 'quoted', text });
    return j + 1;
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === "'") {
      i = quoted(i, "'");
    } else if (c === '"') {
      i = quoted(i, '"');
    } else if (c === '`') {
      i = quoted(i, '`');
    } else if (c === '[') {
      i = quoted(i, ']');
    } else if (c === '*') {
      star = true;
      tokens.push({ kind: 'other', text: c });
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z0-9_$]/.test(sql[j]!)) j++;
      const word = sql.slice(i, j);
      add(word);
      tokens.push({ kind: 'word', text: word });
      if (word.toLowerCase() === 'natural') star = true;
      i = j;
    } else if (/[0-9]/.test(c)) {
      // A number (including 1e5 and 0x1F) is not an identifier.
      let j = i + 1;
      while (j < sql.length && /[0-9A-Za-z_.]/.test(sql[j]!)) j++;
      tokens.push({ kind: 'other', text: sql.slice(i, j) });
      i = j;
    } else {
      if (!/\s/.test(c)) tokens.push({ kind: c === '.' ? 'dot' : 'other', text: c });
      i++;
    }
  }
  return { identifiers, star, pragmas: pragmaNames(tokens) };
}

const isName = (token: Token | undefined): token is Token => token !== undefined && (token.kind === 'word' || token.kind === 'quoted' || token.kind === 'string');

function pragmaNames(tokens: readonly Token[]): string[] {
  const names: string[] = [];
  tokens.forEach((token, i) => {
    if (token.kind === 'word' && token.text.toLowerCase() === 'pragma') {
      // PRAGMA [schema.]name: a name followed by a dot is the schema.
      let at = i + 1;
      if (isName(tokens[at]) && tokens[at + 1]?.kind === 'dot') at += 2;
      const name = tokens[at];
      names.push(isName(name) ? name.text.toLowerCase() : '');
    } else if ((token.kind === 'word' || token.kind === 'quoted') && /^pragma_/i.test(token.text)) {
      names.push(token.text.slice('pragma_'.length).toLowerCase());
    }
  });
  return names;
}
