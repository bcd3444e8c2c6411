/**
 * Property-based fuzzing of the ingest batch preparation (src/server/ingest/prepare.ts:
 * batchBytes, prepareBatch) with fast-check (test/helpers/fuzz.ts): any batch an agent sends,
 * arbitrary bytes, a mutation of valid NDJSON or of its gzip, or events with fields removed, of
 * the wrong type, nested deep or huge, gives rows and a count of rejected lines, or a refusal
 * with a catalogued code; never an exception (prepareBatch throws only on a bug), in bounded time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { eventActions, exampleEvent } from '../../src/common/events/index.js';
import { batchBytes, prepareBatch } from '../../src/server/ingest/prepare.js';
import { assertInputCode, codedOutcome, fuzzParams, mutatedBytes, mutatedTree, textLike, utf8, type Json } from '../helpers/fuzz.js';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const AGENT = 'ag_fuzz0001';
const examples = eventActions.map((a, i) => {
  const e = structuredClone(exampleEvent(a)) as Record<string, any>;
  e['event'].id = `fuzz-${i}`;
  return e as Json;
});
const validNdjson = examples.map((e) => JSON.stringify(e)).join('\n') + '\n';
const decoder = new TextDecoder();

/** A batch as the ingest worker handles it: bytes (gzip when `inflated`), decoded, prepared. */
function checkBatch(data: Uint8Array, inflated: number | undefined, cmdb?: object): void {
  const bytes = codedOutcome(() => batchBytes(data, inflated), 1000, 'batchBytes');
  assert.ok('value' in bytes, 'batchBytes refuses, it does not throw');
  if (!(bytes.value instanceof Uint8Array)) {
    assertInputCode(bytes.value.code, 'batch refusal');
    return;
  }
  const text = decoder.decode(bytes.value);
  const outcome = codedOutcome(() => prepareBatch(AGENT, text, cmdb, NOW), 3000, 'prepareBatch');
  assert.ok('value' in outcome, 'prepareBatch throws only on a bug');
  const batch = outcome.value;
  if (batch.refused) assertInputCode(batch.refused.code, 'batch refusal');
  assert.equal(batch.rows.length, batch.events.length);
  const lines = text.split('\n').filter((l) => l.length > 0).length;
  if (!batch.refused) assert.equal(batch.rows.length + batch.rejected, lines, 'each line is a row or rejected');
  for (const row of batch.rows) JSON.parse(row[14]);
}

describe('fuzz: ingest batches', () => {
  it('the valid batch makes a row of every event', () => {
    const batch = prepareBatch(AGENT, validNdjson, undefined, NOW);
    assert.equal(batch.rejected, 0);
    assert.equal(batch.rows.length, examples.length);
  });

  it('arbitrary bytes and text, plain and as gzip with any ndjson_size', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), textLike.map(utf8), fc.array(fc.json(), { maxLength: 5 }).map((ls) => utf8(ls.join('\n')))), fc.option(fc.oneof(fc.nat(2000), fc.constantFrom(0, 8 * 1024 * 1024, 8 * 1024 * 1024 + 1, 2 ** 32)), { nil: undefined }), (data, inflated) =>
        checkBatch(data, inflated),
      ),
      fuzzParams(400),
    );
  });

  it('mutations of a valid batch (bytes), plain and gzipped, with the right size or not', () => {
    fc.assert(
      fc.property(mutatedBytes(utf8(validNdjson), 5), fc.integer({ min: -2, max: 2 }), fc.boolean(), (bytes, skew, gzip) => {
        if (!gzip) return checkBatch(bytes, undefined);
        const packed = gzipSync(bytes);
        checkBatch(packed, Math.max(0, bytes.length + skew));
      }),
      fuzzParams(200),
    );
  });

  it('mutations of the gzip itself', () => {
    const packed = gzipSync(utf8(validNdjson));
    fc.assert(
      fc.property(mutatedBytes(packed, 3), (bytes) => checkBatch(bytes, utf8(validNdjson).length)),
      fuzzParams(200),
    );
  });

  it('events with fields removed, duplicated, of the wrong type, nested deep, huge, added', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...examples).chain((e) => mutatedTree(e, 3)), { minLength: 1, maxLength: 4 }), fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })), { nil: undefined }), (events, cmdb) =>
        checkBatch(utf8(events.map((e) => JSON.stringify(e)).join('\n')), undefined, cmdb),
      ),
      fuzzParams(300),
    );
  });
});
