/** The agent's gRPC transport: what it changes in the process around it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dropIpServernameWarning } from '../../src/agent/transport/grpc-transport.js';

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
});
