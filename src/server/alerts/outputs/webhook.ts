/**
 * The webhook output: one POST per alert, `application/json`, over a keep-alive agent that the
 * transport owns. The body is the alert document (format json) or a chat message `{"text": ...}`
 * for Slack or Mattermost incoming webhooks (format chat). Any 2xx answer delivers the alert;
 * 5xx, 408 and 429 are retried; other statuses (including redirects, which are not followed)
 * fail the alert at once, since sending it again would meet the same answer.
 *
 * The URL and the headers may hold secrets (chat webhook URLs do, authorization headers do):
 * only the URL's origin appears in logs, errors and counters, and header values never do.
 */
import http from 'node:http';
import https from 'node:https';
import type { WebhookOutputConfig } from '../../../common/config/alert-outputs.js';
import { escapeUnsafe } from '../../../common/safe-text.js';
import type { Alert } from '../types.js';
import { failure, InFlight, networkFailure, once, readTlsMaterial, type AlertTransport, type QueuedAlert } from './transport.js';

/** Bytes of an error answer kept for the failure's message. */
const ANSWER_BYTES = 256;
/** Characters of a command line shown in a chat message. */
const CHAT_COMMAND_CHARS = 2000;
const RETRYABLE_STATUS = new Set([408, 429]);
/**
 * Bytes of a larger body written first, on their own: once the connection took them (their write
 * completed), the receiver is up and has the request, and a failure after that uses an attempt.
 * Small enough for any connection's buffers, whatever the receiver reads.
 */
const FIRST_WRITE_BYTES = 16 * 1024;

export class WebhookTransport implements AlertTransport {
  readonly target: string;
  readonly truncated = 0;
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly inFlight = new InFlight();
  private closed = false;

  constructor(
    name: string,
    private readonly config: WebhookOutputConfig,
  ) {
    this.url = new URL(config.url);
    this.target = this.url.origin;
    // One socket: one delivery is in flight per output, and keep-alive saves a handshake per alert.
    this.agent =
      this.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 1, ...readTlsMaterial(name, config.tls) })
        : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  deliver(item: QueuedAlert): Promise<void> {
    // The queue keeps the alert as JSON only (QueuedAlert): a chat message reads it back.
    const body = Buffer.from(this.config.format === 'chat' ? JSON.stringify({ text: chatText(JSON.parse(item.json) as Alert, this.config.chat_dialect, this.config.link_base_url) }) : item.json);
    return new Promise<void>((resolve, reject) => {
      if (this.closed) {
        reject(failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output is closed`, 'receiver'));
        return;
      }
      const send = this.url.protocol === 'https:' ? https.request : http.request;
      const req = send(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { ...this.config.headers, 'content-type': 'application/json', 'content-length': body.length, 'user-agent': 'hades' },
      });
      // Whether the receiver has the request: the connection took its start (or all of it). A
      // failure before (refused, no connection, TLS) is about the receiver and uses no attempt; one
      // after (a reset, a timeout, however much of a large body was still to go) uses one, so that
      // an alert the receiver keeps failing, such as one larger than it takes, is given up after
      // max_attempts instead of blocking the output.
      let reached = false;
      const settle = once((error?: unknown): void => {
        clearTimeout(timer);
        forget();
        if (error === undefined) resolve();
        else reject(networkFailure(this.target, error, reached));
      });
      const forget = this.inFlight.add((error) => {
        req.destroy();
        settle(error);
      });
      const timer = setTimeout(() => {
        const error = failure('HADES_ERR_ALERT_OUTPUT_TIMEOUT', `${this.target}: no complete answer within ${this.config.timeout_ms} ms`, reached ? 'alert' : 'receiver');
        req.destroy(error);
        settle(error);
      }, this.config.timeout_ms);
      req.on('finish', () => {
        reached = true;
      });
      req.on('error', (error) => settle(error));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // Taken: the alert is delivered, whatever the rest of the answer does (failed for a body
          // that never ended, it was sent again and again). The rest is read so that the one
          // connection can be reused, for at most timeout_ms; then the connection is dropped, or
          // a body that never ends would hold every later alert.
          settle();
          const drain = setTimeout(() => res.destroy(), this.config.timeout_ms);
          res.once('close', () => clearTimeout(drain));
          res.on('error', () => undefined);
          res.resume();
          return;
        }
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          // The answer is read to its end so that the socket can be reused; only its start is kept.
          if (kept < ANSWER_BYTES) {
            chunks.push(chunk);
            kept += chunk.length;
          }
        });
        res.on('error', (error) => settle(error));
        res.on('end', () => {
          const answer = printable(Buffer.concat(chunks).subarray(0, ANSWER_BYTES).toString('utf8'));
          const scope = status >= 500 || RETRYABLE_STATUS.has(status) ? 'alert' : 'final';
          settle(failure('HADES_ERR_ALERT_OUTPUT_BAD_STATUS', `${this.target} answered ${status}${answer ? `: ${answer}` : ''}`, scope));
        });
      });
      if (body.length <= FIRST_WRITE_BYTES) {
        req.end(body);
        return;
      }
      // A body larger than the connection's buffers finishes only once the receiver has read most
      // of it: its start, written alone (written with the rest, its write would complete only
      // with the rest's), says the receiver got the request; then the rest goes.
      req.write(body.subarray(0, FIRST_WRITE_BYTES), (error) => {
        if (error) {
          settle(error);
          return;
        }
        reached = true;
        // Ended even when an early answer settled the delivery: a request left unfinished would
        // hold the output's one connection.
        if (!req.destroyed) req.end(body.subarray(FIRST_WRITE_BYTES));
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.inFlight.abortAll(failure('HADES_ERR_ALERT_OUTPUT_UNREACHABLE', `${this.target}: the output was closed`, 'receiver'));
    this.agent.destroy();
  }
}

function printable(text: string): string {
  return text.replace(/\p{Cc}+/gu, ' ').trim();
}

// --- chat messages -------------------------------------------------------------------------

export type ChatDialect = WebhookOutputConfig['chat_dialect'];

const ICONS: Readonly<Record<string, string>> = {
  critical: ':rotating_light:',
  high: ':red_circle:',
  medium: ':large_orange_diamond:',
  low: ':large_blue_circle:',
  info: ':information_source:',
};

/**
 * The text of a chat message: severity and rule title, host, rule id and count, the process's
 * command line in a code block, and a link to the alert when `linkBase` is set.
 *
 * The command line and the host name come from a possibly compromised host, so they must not
 * be able to mention people, make links or end the code block. Slack decodes only `&amp;`,
 * `&lt;` and `&gt;` and needs them wherever `&`, `<` and `>` appear; Mattermost renders
 * Markdown, shows such entities literally inside code blocks, and turns Slack's `<!channel>`
 * into a mention, hence the two dialects. Nor must they read otherwise than what ran: control,
 * line, direction and invisible characters are written as escapes (`\n`, `\u202e`, `\u200b`),
 * as the CLI shows them in a terminal (oneLine).
 */
export function chatText(alert: Alert, dialect: ChatDialect, linkBase: string | null): string {
  const slack = dialect === 'slack';
  const text = (s: string): string => (slack ? escapeSlack(oneLine(s)) : escapeMarkdown(oneLine(s)));
  const bold = (s: string): string => (slack ? `*${s}*` : `**${s}**`);
  const severity = alert.rule.severity;
  const lines = [
    `${ICONS[severity] ?? ':grey_question:'} ${bold(String(severity).toUpperCase())} ${text(alert.rule.title)}`,
    `Host: ${text(hostLabel(alert.host.name))} (agent ${text(hostLabel(alert.host.id))})`,
    `Rule: ${text(alert.rule.id)}${alert.count > 1 ? ` · ${alert.count} matches` : ''} · ${text(alert['@timestamp'])}`,
  ];
  const command = commandLine(alert.process);
  if (command !== undefined) {
    // Cut before it is escaped (an escape is never cut), and never between the halves of a surrogate pair.
    const cut = CHAT_COMMAND_CHARS - (/[\ud800-\udbff]/.test(command.charAt(CHAT_COMMAND_CHARS - 1)) ? 1 : 0);
    const shown = command.length > CHAT_COMMAND_CHARS ? `${command.slice(0, cut)}…` : command;
    lines.push('```', slack ? escapeSlack(codeBlock(shown)) : breakSlackControls(codeBlock(shown)), '```');
  }
  if (linkBase !== null) {
    const url = `${linkBase}${encodeURIComponent(alert.id)}`.replace(/[<>|\s()[\]]/g, (c) => encodeURIComponent(c));
    lines.push(slack ? `<${url.replace(/&/g, '&amp;')}|Open in Hades>` : `[Open in Hades](${url})`);
  }
  return lines.join('\n');
}

/** The command line of the alert's process: `command_line`, else the arguments, else the executable. */
export function commandLine(process: Alert['process']): string | undefined {
  if (!process) return undefined;
  const line = process['command_line'];
  if (typeof line === 'string' && line !== '') return line;
  const args = process['args'];
  if (Array.isArray(args) && args.length > 0) return args.map(String).join(' ');
  const executable = process['executable'];
  return typeof executable === 'string' && executable !== '' ? executable : undefined;
}

/** Host names and agent ids are made of these characters; anything else is shown as `?`. */
function hostLabel(name: string): string {
  return name.replace(/[^A-Za-z0-9._:-]/g, '?').slice(0, 253) || '?';
}

function escapeSlack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Every ASCII punctuation character may be escaped in CommonMark, which keeps it literal. */
function escapeMarkdown(s: string): string {
  return breakSlackControls(s.replace(/[!-/:-@[-`{-~]/g, '\\$&'));
}

/**
 * Text that reads as it is, on one line: control, line and direction characters, and those that
 * show as nothing, written as escapes (common/safe-text.ts). Before the code block's zero-width
 * spaces are added (codeBlock, breakSlackControls): those are Hades' own.
 */
function oneLine(s: string): string {
  return escapeUnsafe(s, { invisible: true });
}

/** Mattermost's Slack compatibility turns `<!channel>`, `<@user>` and `<#channel>` into mentions and links. */
function breakSlackControls(s: string): string {
  return s.replace(/<(?=[!@#])/g, '<\u200b');
}

/** A code block's content: one line, and no run of backticks that could end the block. */
function codeBlock(s: string): string {
  return oneLine(s).replace(/`(?=`)/g, '`\u200b');
}
