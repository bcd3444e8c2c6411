/**
 * The agent's HTTP collector output against a real local HTTP server: its errors name the
 * collector by origin only. An error becomes the output's `last_error`, which the agent's
 * heartbeat carries to the server, where every API token (read-only ones too) reads it with the
 * agent; a collector URL may hold a secret in its path or query string (`?api_key=...`).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpTransport } from '../../src/agent/pipeline/http-transport.js';
import type { HadesError } from '../../src/common/errors.js';

const SECRET = 's3cr3t-collector-key';
const batch = { firstSeq: 1, lastSeq: 1, events: 1, data: Buffer.from('{"a":1}\n') };
let collector: Server;
let origin: string;

before(async () => {
  collector = createServer((request, response) => {
    request.resume();
    // /too-large answers 413 (a body over the collector's limit), everything else 503 (busy).
    request.on('end', () => response.writeHead(request.url?.startsWith('/too-large') ? 413 : 503).end('no'));
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
});
after(async () => {
  collector.closeAllConnections();
  await new Promise((resolve) => collector.close(resolve));
});

const failure = async (url: string): Promise<HadesError> => {
  const transport = new HttpTransport({ url, headers: {}, timeoutMs: 2000, agentVersion: 'test' });
  try {
    await transport.send(batch, new AbortController().signal);
  } catch (error) {
    return error as HadesError;
  } finally {
    await transport.close();
  }
  throw new Error(`${url}: the send did not fail`);
};

describe('HTTP collector output errors', () => {
  it('name the collector by its origin, never its path or query string (a refusal, an unreachable collector)', async () => {
    const refused = await failure(`${origin}/hooks/${SECRET}?api_key=${SECRET}`);
    assert.equal(refused.code, 'HADES_ERR_OUTPUT_FAILED');
    assert.match(refused.message, /HTTP 503/);
    assert.ok(refused.message.includes(origin), refused.message);
    assert.ok(!refused.message.includes(SECRET), refused.message);
    assert.ok(!refused.message.includes('/hooks'), refused.message);
    // A port nothing listens on (the collector's own, closed by a second server bound and freed).
    const spare = createServer();
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
    const port = (spare.address() as AddressInfo).port;
    await new Promise((resolve) => spare.close(resolve));
    const unreachable = await failure(`http://127.0.0.1:${port}/ingest?token=${SECRET}`);
    assert.equal(unreachable.code, 'HADES_ERR_OUTPUT_FAILED');
    assert.ok(unreachable.message.includes(`http://127.0.0.1:${port}`), unreachable.message);
    assert.ok(!unreachable.message.includes(SECRET), unreachable.message);
  });

  it('refuse a batch for good on 400, 413, 415 and 422 only: anything else is sent again', async () => {
    const tooLarge = await failure(`${origin}/too-large`);
    assert.equal(tooLarge.code, 'HADES_ERR_OUTPUT_REFUSED');
    assert.match(tooLarge.message, /HTTP 413/);
    const busy = await failure(`${origin}/ingest`);
    assert.equal(busy.code, 'HADES_ERR_OUTPUT_FAILED');
  });
});
