/**
 * A small SQL scanner: the identifiers a statement names (bare, "double-quoted", `backticked`,
 * [bracketed]), with string literals and comments skipped, and whether it uses `*`. The engine
 * uses it to tell tables which columns a query may read, and to find tables when EXPLAIN cannot.
 */

export interface SqlNames {
  /** Identifiers, lower-cased, in order of first appearance. */
  readonly identifiers: readonly string[];
  /** A `*` outside strings and comments (SELECT *, t.*, count(*)): every column may be read. */
  readonly star: boolean;
}

export function scanSql(sql: string): SqlNames {
  const identifiers: string[] = [];
  const seen = new Set<string>();
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
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z0-9_$]/.test(sql[j]!)) j++;
      add(sql.slice(i, j));
      i = j;
    } else if (/[0-9]/.test(c)) {
      // A number (including 1e5 and 0x1F) is not an identifier.
      let j = i + 1;
      while (j < sql.length && /[0-9A-Za-z_.]/.test(sql[j]!)) j++;
      i = j;
    } else {
      i++;
    }
  }
  return { identifiers, star };
}
