/**
 * The server's alert outputs (docs/alert-outputs.md): webhooks, syslog receivers and NDJSON
 * files, each behind its own bounded queue with retries, so that a slow or dead receiver never
 * holds up the pipeline or another output. `send` only filters and enqueues; `close` gives the
 * queues a deadline to flush, then closes every socket, timer and file.
 */
import { ALERT_SEVERITIES, checkAlertOutputs, type AlertOutputConfig, type AlertOutputsConfig, type AlertOutputType } from '../../../common/config/alert-outputs.js';
import { configError } from '../../../common/config/validate.js';
import { HadesError, toHadesError } from '../../../common/errors.js';
import type { Logger } from '../../../runtime/log.js';
import type { Alert } from '../types.js';
import { FileTransport } from './file.js';
import { OutputQueue, queueOptions, type LastError, type OutputCounters } from './queue.js';
import { SyslogTransport } from './syslog.js';
import { queuedAlert, type AlertTransport, type QueuedAlert } from './transport.js';
import { WebhookTransport } from './webhook.js';

export { chatText, commandLine } from './webhook.js';
export { formatSyslog, octetFrame, SD_ID, SYSLOG_SEVERITY } from './syslog.js';
export type { LastError, OutputCounters } from './queue.js';

/** One output's counters, as the API and the metrics report them. */
export interface OutputStats extends Readonly<OutputCounters> {
  readonly name: string;
  readonly type: AlertOutputType;
  /** Where alerts go, without secrets: a URL's origin, transport://host:port, a path. */
  readonly target: string;
  /** Alerts not yet delivered (waiting, the one in flight or waiting for its retry, and the unacknowledged). */
  readonly queued: number;
  /** Alerts written to the receiver that its TCP has not acknowledged yet (syslog over TCP and TLS), part of `queued`. */
  readonly unacknowledged: number;
  /** Alerts written again on a new connection, the one they were written on having died before the receiver acknowledged them. */
  readonly resent: number;
  /** Messages cut to fit the receiver's size limit (syslog). */
  readonly truncated: number;
  readonly last_error: LastError | null;
  /** When the receiver last accepted an alert (ISO 8601). */
  readonly last_sent_at: string | null;
}

export interface AlertOutputs {
  /** Hands an alert to every output whose min_severity it reaches. Never throws, never waits. */
  send(alert: Alert): void;
  stats(): OutputStats[];
  /**
   * Stops taking alerts, lets the queues deliver for up to `deadlineMs` (default 5 s), then
   * closes every connection, timer and file; what is still queued is counted as dropped.
   */
  close(deadlineMs?: number): Promise<void>;
}

export const DEFAULT_CLOSE_DEADLINE_MS = 5000;

/** Test seams: the host name syslog messages carry, the jitter source. */
export interface AlertOutputsOptions {
  readonly hostname?: string;
  readonly random?: () => number;
}

const RANK: Readonly<Record<string, number>> = Object.fromEntries(ALERT_SEVERITIES.map((s, i) => [s, i]));

interface Output {
  readonly config: AlertOutputConfig;
  readonly minRank: number;
  readonly transport: AlertTransport;
  readonly queue: OutputQueue;
}

/**
 * Creates the outputs of a validated `alerts.outputs` list. Throws HADES_ERR_CONFIG_INVALID
 * (with HADES_ERR_ALERT_OUTPUT_CONFIG problems) when the list is inconsistent, and
 * HADES_ERR_ALERT_OUTPUT_TLS when a CA, certificate or key file cannot be read: an output
 * that cannot work is refused at start rather than failing every alert later.
 */
export function createAlertOutputs(config: AlertOutputsConfig, log: Logger, options: AlertOutputsOptions = {}): AlertOutputs {
  const problems = checkAlertOutputs(config);
  if (problems.length > 0) throw configError(problems, 'alerts.outputs');
  const outputs: Output[] = [];
  try {
    for (const output of config) {
      const transport = createTransport(output, options);
      const outputLog = log.child({ component: 'alert-output', output: output.name });
      const queue = new OutputQueue(transport, { ...queueOptions(output.name, output.queue, output.retry, outputLog, output.queue_mb), ...(options.random ? { random: options.random } : {}) });
      outputs.push({ config: output, minRank: RANK[output.min_severity] ?? 0, transport, queue });
      outputLog.info(`alert output '${output.name}' ready`, { type: output.type, target: transport.target, min_severity: output.min_severity, ...describe(output) });
      const tls = output.webhook?.tls ?? output.syslog?.tls;
      if (tls?.insecure) outputLog.warn(`alert output '${output.name}' does not verify the receiver's certificate (tls.insecure)`, { target: transport.target });
    }
  } catch (error) {
    for (const output of outputs) void output.transport.close();
    throw error;
  }
  let closed = false;
  let closing: Promise<void> | undefined;

  return {
    send(alert: Alert): void {
      try {
        // An unknown severity is sent everywhere rather than lost.
        const rank = RANK[alert.rule.severity] ?? ALERT_SEVERITIES.length;
        // Made once for every output: the alert's JSON and a few of its fields, not the alert.
        let queued: QueuedAlert | undefined;
        for (const output of outputs) {
          if (rank < output.minRank) {
            output.queue.counters.filtered++;
            continue;
          }
          if (closed) {
            // Stopping: what is queued gets the deadline, nothing new joins it.
            output.queue.counters.dropped++;
            continue;
          }
          queued ??= queuedAlert(alert);
          output.queue.push(queued);
        }
      } catch (error) {
        log.error('an alert could not be handed to the alert outputs', { code: toHadesError(error).code, error, alert_id: alert?.id });
      }
    },

    stats(): OutputStats[] {
      return outputs.map(({ config: output, transport, queue }) => ({
        name: output.name,
        type: output.type,
        target: transport.target,
        ...queue.counters,
        queued: queue.queued,
        unacknowledged: queue.unacknowledged,
        resent: transport.resent ?? 0,
        truncated: transport.truncated,
        last_error: queue.lastError,
        last_sent_at: queue.lastSentAt,
      }));
    },

    close(deadlineMs = DEFAULT_CLOSE_DEADLINE_MS): Promise<void> {
      closed = true;
      // A second caller waits for the same close.
      closing ??= (async () => {
        await Promise.all(outputs.map((o) => o.queue.drain(deadlineMs)));
        await Promise.all(outputs.map((o) => o.queue.close()));
      })();
      return closing;
    },
  };
}

function createTransport(output: AlertOutputConfig, options: AlertOutputsOptions): AlertTransport {
  switch (output.type) {
    case 'webhook':
      return new WebhookTransport(output.name, sectionOf(output, output.webhook));
    case 'syslog':
      return new SyslogTransport(output.name, sectionOf(output, output.syslog), options.hostname, { maxAttempts: output.retry.max_attempts });
    case 'file':
      return new FileTransport(sectionOf(output, output.file));
  }
}

function sectionOf<T>(output: AlertOutputConfig, section: T | undefined): T {
  // checkAlertOutputs made sure of it.
  if (section === undefined) throw new HadesError('HADES_ERR_INTERNAL', `output '${output.name}' has no ${output.type} section`);
  return section;
}

/** What is safe to log of an output's settings: no URL path, no header values. */
function describe(output: AlertOutputConfig): Record<string, unknown> {
  if (output.webhook) return { format: output.webhook.format, header_names: Object.keys(output.webhook.headers) };
  if (output.syslog) return { facility: output.syslog.facility, app_name: output.syslog.app_name };
  return { max_mb: output.file?.max_mb, keep: output.file?.keep };
}
