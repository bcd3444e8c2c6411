/**
 * Shared pieces of the property-based fuzz tests (test/unit/fuzz-*.test.ts, fast-check): the run
 * options (a fixed seed, so that a run reproduces; fast-check prints the seed and the path of a
 * counterexample, and HADES_FUZZ_SEED / HADES_FUZZ_RUNS_FACTOR replay or widen a run), the check that
 * an input either gives a result or fails with a coded Hades error in bounded time, and the
 * mutations of valid inputs: bytes (flips, cuts, splices, huge length fields, raw bytes that are
 * not UTF-8) and trees (fields removed, duplicated, of the wrong type, nested deep, huge).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HadesError, isErrorCode } from '../../src/common/errors.js';
import { concat } from './records.js';

/** The seed of every fuzz test unless HADES_FUZZ_SEED says otherwise. */
export const FUZZ_SEED = 20261130;

/** fast-check parameters: `runs` examples (times HADES_FUZZ_RUNS_FACTOR), the fixed seed. */
export function fuzzParams(runs: number): fc.Parameters<unknown> {
  const seed = process.env['HADES_FUZZ_SEED'];
  const factor = Number(process.env['HADES_FUZZ_RUNS_FACTOR'] ?? '1');
  return { numRuns: Math.max(1, Math.round(runs * (Number.isFinite(factor) && factor > 0 ? factor : 1))), seed: seed === undefined ? FUZZ_SEED : Number(seed), endOnFailure: false, includeErrorInReport: true };
}

/** Asserts `code` is a code of the catalogue, and not the one that means a bug. */
export function assertInputCode(code: unknown, what: string): void {
  assert.equal(typeof code, 'string', `${what}: the code is a string`);
  assert.ok(isErrorCode(code as string), `${what}: ${String(code)} is a code of src/common/errors.ts`);
  assert.notEqual(code, 'HADES_ERR_INTERNAL', `${what}: HADES_ERR_INTERNAL means a bug`);
}

/**
 * Runs `fn`; its result is returned, or a HadesError it threw (with a catalogued code that is not
 * HADES_ERR_INTERNAL). Any other exception fails the property, as does taking longer than `ms`
 * twice in a row: an input that is slow to handle is slow again, while a garbage collection or
 * the machine giving the CPU to another process for a while (a loaded CI host) is not.
 */
export function codedOutcome<T>(fn: () => T, ms: number, what = 'input'): { value: T } | { error: HadesError } {
  const start = performance.now();
  let outcome: { value: T } | { error: HadesError };
  try {
    outcome = { value: fn() };
  } catch (error) {
    outcome = codedError(error, what);
  }
  const took = performance.now() - start;
  if (took < ms) return outcome;
  const again = performance.now();
  try {
    fn();
  } catch {
    // The first run's outcome is the one checked.
  }
  return inTime(outcome, took, again, ms, what);
}

/** The async form of codedOutcome. */
export async function codedOutcomeAsync<T>(fn: () => Promise<T>, ms: number, what = 'input'): Promise<{ value: T } | { error: HadesError }> {
  const start = performance.now();
  let outcome: { value: T } | { error: HadesError };
  try {
    outcome = { value: await fn() };
  } catch (error) {
    outcome = codedError(error, what);
  }
  const took = performance.now() - start;
  if (took < ms) return outcome;
  const again = performance.now();
  try {
    await fn();
  } catch {
    // The first run's outcome is the one checked.
  }
  return inTime(outcome, took, again, ms, what);
}

/** A thrown value as the outcome of a property: a HadesError with a catalogued input code, or a failure. */
function codedError(error: unknown, what: string): { error: HadesError } {
  if (!(error instanceof HadesError)) throw new AssertionError(`${what}: threw ${describeThrown(error)} instead of a coded HadesError`, error);
  assertInputCode(error.code, what);
  return { error };
}

/** The outcome, failing the property when its second run (started at `again`) took `ms` or more too. */
function inTime<T>(outcome: T, first: number, again: number, ms: number, what: string): T {
  const took = performance.now() - again;
  assert.ok(took < ms, `${what}: took ${first.toFixed(0)} ms, and ${took.toFixed(0)} ms again; the bound is ${ms} ms`);
  return outcome;
}

class AssertionError extends assert.AssertionError {
  constructor(message: string, cause: unknown) {
    super({ message });
    this.cause = cause;
  }
}

function describeThrown(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message.slice(0, 300)}\n${(error.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
  return String(error);
}

// ---------------------------------------------------------------------------------------------
// Byte mutations

/** Values a length or count field is most likely to be wrong with. */
const EXTREME_U32 = [0, 1, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffff8, 0xffffffff];

export type ByteMutation =
  | { readonly op: 'flip'; readonly at: number; readonly mask: number }
  | { readonly op: 'set'; readonly at: number; readonly byte: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'remove'; readonly at: number; readonly length: number }
  | { readonly op: 'duplicate'; readonly at: number; readonly length: number }
  | { readonly op: 'u32'; readonly at: number; readonly value: number }
  | { readonly op: 'u16'; readonly at: number; readonly value: number };

/** Positions are fractions of the input's length (0..1), so that one mutation fits any input. */
const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

/** Byte sequences that are not UTF-8: lone continuation bytes, overlong forms, surrogates, cut sequences, 0xfe/0xff. */
export const nonUtf8Bytes: fc.Arbitrary<Uint8Array> = fc
  .constantFrom([0x80], [0xbf], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0xfe], [0xff], [0xff, 0xfe, 0x00])
  .map((b) => Uint8Array.from(b));

export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: position, mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('set' as const), at: position, byte: fc.oneof(fc.constantFrom(0x00, 0x0a, 0x22, 0x3a, 0x5c, 0x7f, 0x80, 0xc0, 0xed, 0xfe, 0xff), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.oneof(fc.uint8Array({ maxLength: 32 }), nonUtf8Bytes) }),
  fc.record({ op: fc.constant('remove' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 256 }) }),
  fc.record({ op: fc.constant('u32' as const), at: position, value: fc.oneof(fc.constantFrom(...EXTREME_U32), fc.nat()) }),
  fc.record({ op: fc.constant('u16' as const), at: position, value: fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff), fc.integer({ min: 0, max: 0xffff })) }),
);

/** Applies one mutation (a copy; the input is left as it is). `align`: u32/u16 writes land on multiples of it. */
export function mutateBytes(input: Uint8Array, m: ByteMutation, align = 1): Uint8Array {
  const n = input.length;
  const at = (f: number, room = 0) => Math.max(0, Math.min(Math.max(0, n - room), Math.floor(f * (n + 1))));
  const out = Uint8Array.from(input);
  switch (m.op) {
    case 'flip':
      if (n > 0) {
        const i = Math.min(n - 1, at(m.at));
        out[i] = (out[i] ?? 0) ^ m.mask;
      }
      return out;
    case 'set':
      if (n > 0) out[Math.min(n - 1, at(m.at))] = m.byte;
      return out;
    case 'truncate':
      return out.slice(0, at(m.at));
    case 'insert': {
      const i = at(m.at);
      return concatBytes(out.subarray(0, i), m.bytes, out.subarray(i));
    }
    case 'remove': {
      const i = at(m.at);
      return concatBytes(out.subarray(0, i), out.subarray(Math.min(n, i + m.length)));
    }
    case 'duplicate': {
      const i = at(m.at);
      const piece = out.subarray(i, Math.min(n, i + m.length));
      return concatBytes(out.subarray(0, i), piece, piece, out.subarray(i));
    }
    case 'u32':
    case 'u16': {
      const width = m.op === 'u32' ? 4 : 2;
      if (n < width) return out;
      const i = Math.floor(at(m.at, width) / align) * align;
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      if (i + width > n) return out;
      if (width === 4) view.setUint32(i, m.value >>> 0, true);
      else view.setUint16(i, m.value & 0xffff, true);
      return out;
    }
  }
}

/** `input` with 1..`max` mutations applied in turn. */
export function mutatedBytes(input: Uint8Array | fc.Arbitrary<Uint8Array>, max = 4, align = 1): fc.Arbitrary<Uint8Array> {
  const base = input instanceof Uint8Array ? fc.constant(input) : input;
  return fc.tuple(base, fc.array(byteMutation, { minLength: 1, maxLength: max })).map(([bytes, ms]) => ms.reduce((b, m) => mutateBytes(b, m, align), bytes));
}

/** Byte strings one after another (the records helper's concat). */
export const concatBytes = concat;

/** Text as bytes (UTF-8). */
export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/**
 * The text a mutated text becomes: the bytes mutated, then decoded as a file of them would be
 * (UTF-8, each byte that is not UTF-8 as U+FFFD).
 */
export function mutatedText(input: string | fc.Arbitrary<string>, max = 4): fc.Arbitrary<string> {
  const base = typeof input === 'string' ? fc.constant(input) : input;
  return mutatedBytes(base.map(utf8), max).map((b) => Buffer.from(b).toString('utf8'));
}

/** Text that looks like what the parsers read: lines of printable text, separators, quotes, comments, NULs, raw unicode. */
export const textLike: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { weight: 5, arbitrary: fc.string({ maxLength: 40 }) },
      { weight: 3, arbitrary: fc.constantFrom('\n', '\r\n', ':', '::', '=', ',', ' ', '\t', '#', '"', "'", '\\', '[', ']', '{', '}', '-', '- ', '* ', '%', '@', '$', '!', '/', '\0', '\u2028', '\ufeff', '\ud800', 'é', '𝔘') },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(''));

/** Lines built from fields split by `sep`, as in passwd-like files; some fields empty, huge or odd. */
export function fieldLines(sep: string, fields: { min: number; max: number }): fc.Arbitrary<string> {
  const field = fc.oneof(
    { weight: 4, arbitrary: fc.stringMatching(/^[a-z0-9_./-]{0,12}$/) },
    { weight: 2, arbitrary: fc.oneof(fc.nat().map(String), fc.integer().map(String), fc.constantFrom('-1', '4294967295', '4294967296', '99999999999999999999', '1e9', '0x10', 'NaN', '')) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(5000), '#', '+', '+@', '-', '!', '*', '!!', '$6$salt$hash', ' ', '\t') },
  );
  return fc.array(fc.array(field, { minLength: fields.min, maxLength: fields.max }).map((f) => f.join(sep)), { maxLength: 30 }).map((lines) => lines.join('\n'));
}

// ---------------------------------------------------------------------------------------------
// Tree mutations (JSON and YAML documents)

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Values of every type, a wrong one for whatever a field wants. */
export const wrongValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, '', ' ', 'x'.repeat(70_000), [], {}, [null], { '': null }, '__proto__', 'constructor', '\0', '\u202e', '~', 'yes', 'no', '0x10', '1e9', '-0', 'NaN', '.inf'),
  fc.string({ maxLength: 30 }),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
);

export type TreeMutation =
  | { readonly op: 'remove'; readonly pick: number }
  | { readonly op: 'retype'; readonly pick: number; readonly value: Json }
  | { readonly op: 'duplicate'; readonly pick: number }
  | { readonly op: 'nest'; readonly pick: number; readonly depth: number; readonly list: boolean }
  | { readonly op: 'huge'; readonly pick: number; readonly length: number }
  | { readonly op: 'add'; readonly pick: number; readonly key: string; readonly value: Json };

export const treeMutation: fc.Arbitrary<TreeMutation> = fc.oneof(
  fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('retype' as const), pick: fc.nat(), value: wrongValue }),
  fc.record({ op: fc.constant('duplicate' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('nest' as const), pick: fc.nat(), depth: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(100, 260)), list: fc.boolean() }),
  fc.record({ op: fc.constant('huge' as const), pick: fc.nat(), length: fc.constantFrom(1000, 70_000, 300_000) }),
  fc.record({ op: fc.constant('add' as const), pick: fc.nat(), key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '', ' ', 'id', 'rule', 'condition', 'list', 'macro')), value: wrongValue }),
);

/** Every container of a tree (objects and arrays), the root first. */
function containers(tree: Json): (Json[] | { [key: string]: Json })[] {
  const out: (Json[] | { [key: string]: Json })[] = [];
  const walk = (node: Json, depth: number) => {
    if (node === null || typeof node !== 'object' || depth > 64) return;
    out.push(node);
    for (const child of Array.isArray(node) ? node : Object.values(node)) walk(child, depth + 1);
  };
  walk(tree, 0);
  return out;
}

function nestDeep(value: Json, depth: number, list: boolean): Json {
  let v = value;
  for (let i = 0; i < depth; i++) v = list ? [v] : { a: v };
  return v;
}

/** Applies one tree mutation to a deep copy of `tree`. */
export function mutateTree(tree: Json, m: TreeMutation): Json {
  const copy = structuredClone(tree);
  const all = containers(copy);
  const node = all[m.pick % Math.max(1, all.length)];
  if (node === undefined) return m.op === 'retype' ? m.value : copy;
  const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
  const key = keys.length > 0 ? keys[Math.floor(m.pick / Math.max(1, all.length)) % keys.length] : undefined;
  const get = (k: string | number) => (Array.isArray(node) ? node[k as number] : node[k as string]) as Json;
  const set = (k: string | number, v: Json) => {
    if (Array.isArray(node)) node[k as number] = v;
    else Object.defineProperty(node, k, { value: v, enumerable: true, writable: true, configurable: true });
  };
  switch (m.op) {
    case 'remove':
      if (key === undefined) return copy;
      if (Array.isArray(node)) node.splice(key as number, 1);
      else delete node[key as string];
      return copy;
    case 'retype':
      if (key !== undefined) set(key, m.value);
      return copy;
    case 'duplicate':
      if (key === undefined) return copy;
      if (Array.isArray(node)) node.splice(key as number, 0, structuredClone(get(key)));
      // An object cannot hold a key twice: the copy goes under the same name in upper case (or with a suffix).
      else set((key as string).toUpperCase() !== key ? (key as string).toUpperCase() : `${key}2`, structuredClone(get(key)));
      return copy;
    case 'nest':
      if (key !== undefined) set(key, nestDeep(get(key), m.depth, m.list));
      return copy;
    case 'huge':
      if (key !== undefined) set(key, typeof get(key) === 'string' ? (get(key) as string).repeat(Math.ceil(m.length / Math.max(1, (get(key) as string).length))) : 'y'.repeat(m.length));
      return copy;
    case 'add':
      if (Array.isArray(node)) node.push(m.value);
      else set(m.key, m.value);
      return copy;
  }
}

/** `tree` with 1..`max` tree mutations applied in turn. */
export function mutatedTree(tree: Json, max = 3): fc.Arbitrary<Json> {
  return fc.array(treeMutation, { minLength: 1, maxLength: max }).map((ms) => ms.reduce((t, m) => mutateTree(t, m), tree));
}

/** YAML text with a mapping key repeated (the duplicate-key case, which a tree cannot hold). */
export function withDuplicatedLine(text: string, pick: number): string {
  const lines = text.split('\n');
  const keyLines = lines.map((l, i) => [l, i] as const).filter(([l]) => /^\s*[A-Za-z_][\w.-]*\s*:/.test(l));
  const chosen = keyLines[pick % Math.max(1, keyLines.length)];
  if (chosen === undefined) return text;
  lines.splice(chosen[1] + 1, 0, chosen[0]);
  return lines.join('\n');
}

/**
 * The time of the fastest of `runs` runs of `fn` (ms): for a bound on how long something takes,
 * which one garbage collection or a busy machine would break in a single run.
 */
export function fastestMs(fn: () => void, runs = 3): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}
