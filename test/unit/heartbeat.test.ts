/** The heartbeat's view of an output: the server API's names, and a bounded size. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heartbeatOutput } from '../../src/agent/daemon/heartbeat.js';
import type { ChannelStats } from '../../src/agent/pipeline/channels.js';

const output = (address: string): ChannelStats => ({
  name: 'server',
  in: 1,
  out: 1,
  bytesOut: 10,
  dropped: {},
  queued: 0,
  up: true,
  stream: { opened: 2, lost: { connect_failed: 1, server_ended: 1, ack_timeout: 0, renewal_reconnect: 0, preferred_return: 0 }, nacked: { temporary: 1, permanent: 0 }, resent: 1, held: 1, address, addressIndex: 1 },
});

describe('the heartbeat of an output', () => {
  it("says the server output's streams with the API's names", () => {
    assert.deepEqual(heartbeatOutput(output('10.0.0.2:7443'))['stream'], {
      opened: 2,
      lost: { connect_failed: 1, server_ended: 1, ack_timeout: 0, renewal_reconnect: 0, preferred_return: 0 },
      nacked: { temporary: 1, permanent: 0 },
      resent: 1,
      held: 1,
      address: '10.0.0.2:7443',
      address_index: 1,
    });
  });

  it('cuts a long gateway address, so that the heartbeat stays small', () => {
    const stream = heartbeatOutput(output(`${'a'.repeat(100_000)}:7443`))['stream'] as { address: string };
    assert.equal(stream.address.length, 256);
    assert.ok(JSON.stringify(heartbeatOutput(output('x'.repeat(100_000)))).length < 2048);
  });

  it('says nothing of streams for an output without any', () => {
    const plain: ChannelStats = { name: 'stdout', in: 1, out: 1, bytesOut: 10, dropped: {}, queued: 0, up: true };
    assert.equal('stream' in heartbeatOutput(plain), false);
  });
});
