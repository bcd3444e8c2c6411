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

describe('redactSecrets keeps the shape of the JSON', () => {
  // A text that ends in a flag is followed by the next member's name (`","cwd":`): that name must
  // never be taken for the flag's value (the event would have a member named [redacted], fail its
  // schema check and be dropped: a way to hide a process and its children).
  const endings = ['--token', '--password', '-p', '--api-key', 'sshpass -p', 'sshpass', 'Authorization: Bearer', 'bearer', 'Authorization: Basic', 'X-Api-Key:', 'mysql -u root -p', 'mysql', '-u', '--user', '-u alice', 'https://u:', 'hadesapi_', '--token=', 'x --secret'];
  const keys = ['cwd', 'start', 'working_directory', 'abcdefghijklmnop_qrs', 'pid', 'name'];
  const shape = (value: unknown): unknown =>
    Array.isArray(value) ? value.map(shape) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)])) : typeof value;

  it('never replaces a member name after a text that ends in a flag', () => {
    for (const ending of endings) {
      for (const key of keys) {
        const event = {
          process: { command_line: `/bin/echo x ${ending}`, [key]: '/tmp', args: ['/bin/echo', 'x', ...ending.split(' ')], parent: { command_line: `sh -c y ${ending}`, [key]: 7 } },
          [key]: { [key]: `a ${ending}`, z: 'long-enough-value-here' },
        };
        const line = JSON.stringify(event);
        const parsed = JSON.parse(redactSecrets(line)) as unknown;
        assert.deepEqual(shape(parsed), shape(event), `${ending} then ${key}: ${redactSecrets(line)}`);
      }
    }
  });

  it('still redacts a value in the next element of an argument list', () => {
    const line = JSON.stringify({ process: { args: ['vault', '--token', 's.abcdefgh', 'sshpass', '-p', 'pw12345678', 'curl', '--oauth2-bearer', 'OAUTHSECRET0123456789'], cwd: '/tmp' } });
    const out = JSON.parse(redactSecrets(line)) as { process: { args: string[]; cwd: string } };
    assert.deepEqual(out.process.args, ['vault', '--token', '[redacted]', 'sshpass', '-p', '[redacted]', 'curl', '--oauth2-bearer', '[redacted]']);
    assert.equal(out.process.cwd, '/tmp');
  });
});

describe('redactSecrets: credentials of other forms', () => {
  const cases: [string, string][] = [
    ['curl -H "Authorization: BEARER abcdefSECRETupper123456" x', 'curl -H "Authorization: BEARER [redacted]" x'],
    ['curl --oauth2-bearer OAUTHSECRET0123456789 https://x', 'curl --oauth2-bearer [redacted] https://x'],
    ['curl -H "Authorization: Basic dXNlcjpQQVNTV09SRDEyMw==" x', 'curl -H "Authorization: Basic [redacted]" x'],
    ['curl -H "X-Api-Key: abcSECRET" -H "PRIVATE-TOKEN: glpat-xyz" x', 'curl -H "X-Api-Key: [redacted]" -H "PRIVATE-TOKEN: [redacted]" x'],
    ['curl -u alice:S3cretPw https://x', 'curl -u alice:[redacted] https://x'],
    ['curl --user=alice:S3cretPw https://x', 'curl --user=alice:[redacted] https://x'],
    ['git clone https://bob:tok3n@github.com/x.git', 'git clone https://bob:[redacted]@github.com/x.git'],
    ['mysql -u root -pS3cret db', 'mysql -u root -p[redacted] db'],
    ['sshpass -p SSHPASS123 ssh root@10.0.0.1', 'sshpass -p [redacted] ssh root@10.0.0.1'],
    ['wget --password=hunter22 http://x', 'wget --password=[redacted] http://x'],
    ['vault login --token s.abcdef', 'vault login --token [redacted]'],
    ['openssl enc -pass pass:abc123 -in x', 'openssl enc -pass [redacted] -in x'],
  ];
  it('drops the secret and keeps the rest, in a command line and in the JSON of an argument list', () => {
    for (const [text, want] of cases) {
      assert.equal(redactSecrets(text), want, text);
      // The agent's argument list: the value in the element after its flag.
      const args = text.match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
      const line = JSON.stringify({ process: { args } });
      const out = (JSON.parse(redactSecrets(line)) as { process: { args: string[] } }).process.args.join(' ');
      assert.ok(!/S3cret|SECRET|hunter22|tok3n|SSHPASS123|dXNlcjpQ|glpat|abc123|s\.abcdef/.test(out), `${line} -> ${out}`);
    }
  });

  it('leaves alone what only looks like them', () => {
    for (const text of ['mkdir -p /tmp/x', 'ssh -p 22 root@host', 'ps -u root', 'sort -u file', 'docker run -u 1000:1000 img', 'cp -p a b', 'mysql -u root -p db', 'cat /etc/passwd', 'echo key: value', 'the bearer of bad news', 'npm install --user-agent x', 'scp file user@host:/tmp']) {
      assert.equal(redactSecrets(text), text);
    }
  });

  it('takes time in proportion to the line: a command line of `mysql mysql ...` does not hold the ingest thread', () => {
    // Any user of a host can exec one; each `mysql` used to be followed to the end of the line
    // (3 s for 128 KiB on the test machine, an hour for a 4 MiB event).
    for (const unit of ['mysql ', 'mysql","', 'mariadb-dump a ', 'mysql a\\n']) {
      const text = unit.repeat(Math.floor((128 * 1024) / unit.length));
      const start = performance.now();
      assert.equal(redactSecrets(text), text);
      const ms = performance.now() - start;
      assert.ok(ms < 300, `${JSON.stringify(unit)} x 128 KiB took ${Math.round(ms)} ms`);
    }
    // Still found after many arguments (up to 64 of them).
    assert.equal(redactSecrets(`mysql ${'--x '.repeat(60)}-pS3cret db`), `mysql ${'--x '.repeat(60)}-p[redacted] db`);
  });
});
