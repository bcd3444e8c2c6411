import { distance } from 'fastest-levenshtein';

/**
 * The candidate closest to `name` by edit distance, when it is close enough to be a likely
 * misspelling (at most a third of the name's length, and at least 1; two letters swapped count
 * as one edit); otherwise the one candidate that `name` begins (a name cut short, of 3 letters
 * or more); otherwise undefined.
 */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = name.toLowerCase();
  const prefixed: string[] = [];
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    const d = swapped(lower, other) ? 1 : distance(lower, other);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
    if (lower.length >= 3 && other.startsWith(lower)) prefixed.push(candidate);
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  if (best !== undefined && bestDistance <= limit) return best;
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** Whether `a` is `b` with two neighbouring letters swapped. */
function swapped(a: string, b: string): boolean {
  if (a.length !== b.length || a === b) return false;
  let i = 0;
  while (a[i] === b[i]) i++;
  return a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
}

export function didYouMean(suggestion: string | undefined): string {
  return suggestion === undefined ? '' : `; did you mean '${suggestion}'?`;
}
