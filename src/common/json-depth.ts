/**
 * How deep JSON text nests, found without parsing it: a message from an agent is checked before
 * JSON.parse (which takes seconds and hundreds of MB on megabytes of `[[[[...`) and before it is
 * kept, since a value nested thousands deep parses but overflows the stack of whatever serialises
 * it again later (the API's answers).
 */

/** Whether arrays and objects in `text` nest deeper than `limit` (strings skipped); linear, stops at the first level past it. */
export function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
