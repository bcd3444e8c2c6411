/**
 * Finding many substrings in one pass: an Aho-Corasick automaton compiled into a table (one
 * typed-array read per character of the text), so that the value index can tell which of the
 * hundreds of `contains` strings of a rule set a command line holds at the cost of reading it
 * once, instead of one search per string and per rule.
 *
 * Texts and needles are compared as UTF-16 code units, as `String.prototype.includes` does.
 */

/** Code units that get a column of their own when they occur in needles; others share column 0. */
const DIRECT = 128;

export class NeedleScanner {
  readonly needles: readonly string[];
  /** Column of each ASCII code unit. */
  private readonly ascii = new Uint16Array(DIRECT);
  /** Columns of the other code units that occur in needles. */
  private readonly wide = new Map<number, number>();
  private readonly width: number;
  /** Next state by (state * width + column). */
  private readonly delta: Uint16Array | Uint32Array;
  /** Needles that end at each state (its own and those of shorter suffixes), or undefined. */
  private readonly found: (readonly number[] | undefined)[];

  /** @param needles non-empty strings; their positions are the ids `scan` reports. */
  constructor(needles: readonly string[]) {
    this.needles = needles;
    let columns = 1;
    for (const n of needles) {
      if (n.length === 0) throw new RangeError('a needle is empty');
      for (let i = 0; i < n.length; i++) {
        const c = n.charCodeAt(i);
        if (c < DIRECT) {
          if (this.ascii[c] === 0) this.ascii[c] = columns++;
        } else if (!this.wide.has(c)) this.wide.set(c, columns++);
      }
    }
    this.width = columns;
    // The trie, state 0 the root.
    const children: Map<number, number>[] = [new Map<number, number>()];
    const ends: number[][] = [[]];
    needles.forEach((n, id) => {
      let s = 0;
      for (let i = 0; i < n.length; i++) {
        const col = this.column(n.charCodeAt(i));
        let next = children[s]!.get(col);
        if (next === undefined) {
          next = children.length;
          children.push(new Map<number, number>());
          ends.push([]);
          children[s]!.set(col, next);
        }
        s = next;
      }
      ends[s]!.push(id);
    });
    // Breadth first: each state's transitions are its children, else those of its failure state.
    const states = children.length;
    const delta = states <= 0xffff ? new Uint16Array(states * columns) : new Uint32Array(states * columns);
    const fail = new Uint32Array(states);
    const found: (readonly number[] | undefined)[] = new Array<readonly number[] | undefined>(states);
    const queue: number[] = [];
    for (let col = 0; col < columns; col++) {
      const next = children[0]!.get(col);
      if (next !== undefined) {
        delta[col] = next;
        queue.push(next);
      }
    }
    found[0] = undefined;
    for (let head = 0; head < queue.length; head++) {
      const s = queue[head]!;
      const inherited = found[fail[s]!];
      const own = ends[s]!;
      found[s] = own.length === 0 ? inherited : inherited === undefined ? own : [...own, ...inherited];
      for (let col = 0; col < columns; col++) {
        const next = children[s]!.get(col);
        const viaFail = delta[fail[s]! * columns + col]!;
        if (next === undefined) delta[s * columns + col] = viaFail;
        else {
          delta[s * columns + col] = next;
          fail[next] = viaFail;
          queue.push(next);
        }
      }
    }
    this.delta = delta;
    this.found = found;
  }

  private column(code: number): number {
    return code < DIRECT ? this.ascii[code]! : (this.wide.get(code) ?? 0);
  }

  /** Whether the text holds any of the needles (stops at the first). */
  holdsAny(text: string): boolean {
    const { delta, width, ascii, found } = this;
    let s = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      s = delta[s * width + (c < DIRECT ? ascii[c]! : (this.wide.get(c) ?? 0))]!;
      if (found[s] !== undefined) return true;
    }
    return false;
  }

  /**
   * Writes into `out` from position `n` on the id of each needle the text holds, once per
   * occurrence, and returns the position after the last: `out` is a buffer reused from text to
   * text (what lies past the position returned is stale), never shortened.
   */
  scan(text: string, out: number[], n = 0): number {
    const { delta, width, ascii, found } = this;
    let s = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      s = delta[s * width + (c < DIRECT ? ascii[c]! : (this.wide.get(c) ?? 0))]!;
      const ids = found[s];
      if (ids !== undefined) for (let k = 0; k < ids.length; k++) out[n++] = ids[k]!;
    }
    return n;
  }
}
