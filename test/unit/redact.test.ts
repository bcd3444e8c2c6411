import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactSecrets } from '../../src/common/redact.js';

describe('redactSecrets', () => {
  it('keeps the id of Hades tokens and drops their secret; drops bearer credentials', () => {
    assert.equal(
      redactSecrets('curl -H "Authorization: Bearer hadesapi_320ec5be22514c30_jLeZX3b9AdwXNEEaQSjT3D_Mqn" https://h:7080/api/v1/agents'),
      'curl -H "Authorization: Bearer hadesapi_320ec5be22514c30_[redacted]" https://h:7080/api/v1/agents',
    );
    assert.equal(redactSecrets('hades agent --token hades1_0123456789abcdef_c2VjcmV0LXNlY3JldA'), 'hades agent --token hades1_0123456789abcdef_[redacted]');
    assert.equal(redactSecrets('curl -H "authorization: bearer eyJhbGciOiJIUzI1NiJ9.e30.abc" x'), 'curl -H "authorization: bearer [redacted]" x');
  });

  it('leaves text without secrets as it is (the same string) and JSON valid', () => {
    const plain = '{"process":{"command_line":"ls -la /tmp"}}';
    assert.equal(redactSecrets(plain), plain);
    const line = JSON.stringify({ process: { args: ['curl', '-H', 'Authorization: Bearer abcdefgh12345678', 'https://x'] } });
    const out = JSON.parse(redactSecrets(line)) as { process: { args: string[] } };
    assert.equal(out.process.args[2], 'Authorization: Bearer [redacted]');
    assert.equal(redactSecrets('the bearer of bad news'), 'the bearer of bad news', 'a word shorter than a credential stays');
  });
});
