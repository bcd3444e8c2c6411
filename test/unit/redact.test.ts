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

describe('redactSecrets on JSON text (what the server redacts: an agent\'s NDJSON line)', () => {
  it('redacts what it redacts in the plain text when a tab or newline (written \\t, \\n in JSON) stands next to the secret', () => {
    const texts = [
      'sh -c "echo start\nhades1_0123456789abcdef_c2VjcmV0LXNlY3JldA"',
      'printf "\thadesapi_320ec5be22514c30_jLeZX3b9AdwXNEEaQSjT3D_Mqn"',
      'curl -H "Authorization:\tBearer eyJhbGciOiJIUzI1NiJ9.e30.abcdefgh" https://x',
      'curl -H "Authorization: Bearer\teyJhbGciOiJIUzI1NiJ9.e30.abcdefgh" https://x',
      'curl -H $\'Authorization: Bearer\n\teyJhbGciOiJIUzI1NiJ9.e30.abcdefgh\' https://x',
      'echo \u001bhades1_0123456789abcdef_c2VjcmV0LXNlY3JldA',
    ];
    for (const text of texts) {
      const plain = redactSecrets(text);
      assert.notEqual(plain, text, `the plain text ${JSON.stringify(text)} has a secret`);
      const line = JSON.stringify({ process: { command_line: text, args: [text] } });
      const out = JSON.parse(redactSecrets(line)) as { process: { command_line: string; args: string[] } };
      assert.equal(out.process.command_line, plain, `in JSON: ${line}`);
      assert.deepEqual(out.process.args, [plain]);
    }
  });
});
