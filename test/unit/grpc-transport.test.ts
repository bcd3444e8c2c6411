/** The agent's gRPC transport: what it changes in the process around it. */
import assert from 'node:assert/strict';
import { getEventListeners, once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { dropIpServernameWarning, GrpcTransport } from '../../src/agent/transport/grpc-transport.js';
import { isHadesError } from '../../src/common/errors.js';
import { Pki } from '../../src/server/pki.js';
import { cleanupTempDirs, freePorts, makeCsr, sinkLogger, tempDir } from '../helpers/server.js';

describe('the gRPC transport', () => {
  it('drops only Node\'s warning about an IP address as TLS server name (DEP0123)', async () => {
    dropIpServernameWarning();
    dropIpServernameWarning(); // idempotent: one filter, however many streams open
    const seen: string[] = [];
    const listener = (warning: Error & { code?: string }) => seen.push(warning.code ?? warning.message);
    process.on('warning', listener);
    try {
      process.emitWarning('Setting the TLS ServerName to an IP address is not permitted by RFC 6066.', 'DeprecationWarning', 'DEP0123');
      process.emitWarning('ip servername', { type: 'DeprecationWarning', code: 'DEP0123' });
      process.emitWarning('something else', 'DeprecationWarning', 'DEP0999');
      process.emitWarning('options form', { code: 'HADES_TEST' });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    assert.deepEqual(seen, ['DEP0999', 'HADES_TEST']);
  });

  it('leaves no listener on the sender\'s abort signal after each failed connection (a long outage leaks nothing)', async () => {
    const pki = await Pki.open(tempDir('hades-transport-pki-'), { hostnames: [], ips: [] });
    const { csrPem, keyPem } = await makeCsr();
    const issued = await pki.signAgentCsr(csrPem, 'ag_00000000000000bb');
    // Nothing listens there: every attempt fails before any Welcome.
    const [port] = await freePorts(1);
    const identity = { agentId: 'ag_00000000000000bb', keyPem, certPem: issued.certPem, caPem: pki.caPem, gateways: [`127.0.0.1:${port}`] };
    const transport = new GrpcTransport({ identity, addresses: identity.gateways, agentVersion: 'test', log: sinkLogger(), connectTimeoutMs: 2000 });
    // The spooled channel sends every batch with the same signal, for as long as the output lives.
    const signal = new AbortController().signal;
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        await assert.rejects(transport.send({ firstSeq: 1, lastSeq: 1, events: 1, data: Buffer.from('{}\n') }, signal), (error) => isHadesError(error));
      }
      assert.equal(getEventListeners(signal, 'abort').length, 0, 'every failed attempt removed its listener');
      // Each attempt counted once as a failed connection; no stream, so no address in use; the
      // batch was never written, so it was never sent again either.
      assert.deepEqual(transport.streamStats(), {
        opened: 0,
        lost: { connect_failed: 5, server_ended: 0, ack_timeout: 0, renewal_reconnect: 0, preferred_return: 0 },
        nacked: { temporary: 0, permanent: 0 },
        resent: 0,
        held: 0,
      });
    } finally {
      await transport.close();
      cleanupTempDirs();
    }
    // Closing ends nothing more: a stop is no loss.
    assert.equal(transport.streamStats().lost.connect_failed, 5);
  });

  it('counts no loss for an attempt the agent stops itself', async () => {
    const pki = await Pki.open(tempDir('hades-transport-pki-'), { hostnames: [], ips: [] });
    const { csrPem, keyPem } = await makeCsr();
    const issued = await pki.signAgentCsr(csrPem, 'ag_00000000000000bc');
    // A listener that takes the connection and never answers: the attempt waits until stopped.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as { port: number }).port;
    const identity = { agentId: 'ag_00000000000000bc', keyPem, certPem: issued.certPem, caPem: pki.caPem, gateways: [`127.0.0.1:${port}`] };
    const transport = new GrpcTransport({ identity, addresses: identity.gateways, agentVersion: 'test', log: sinkLogger(), connectTimeoutMs: 30_000 });
    const stop = new AbortController();
    try {
      const sent = transport.send({ firstSeq: 1, lastSeq: 1, events: 1, data: Buffer.from('{}\n') }, stop.signal);
      await new Promise((resolve) => setTimeout(resolve, 200));
      stop.abort();
      await assert.rejects(sent, (error) => isHadesError(error));
      assert.deepEqual(transport.streamStats().lost, { connect_failed: 0, server_ended: 0, ack_timeout: 0, renewal_reconnect: 0, preferred_return: 0 });
      assert.equal(transport.streamStats().opened, 0);
    } finally {
      await transport.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
      cleanupTempDirs();
    }
  });
});
