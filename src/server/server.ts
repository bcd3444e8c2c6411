/**
 * The server: owns every long-lived part of `hades server` and wires them. Start: the database
 * (SQLite in WAL mode), the CA and server certificate, the fleet registry, tokens and the audit
 * log, the event store (and the raw archive when on), the CMDB, the agent gateway (gRPC over
 * mutual TLS) and the REST API (HTTPS). Events flow gateway -> CMDB enrichment -> store ->
 * detection (rules -> alerts -> alert outputs), and each batch is acknowledged after its commit.
 * Stop, in reverse; every timer and socket closes.
 */
import { chmodSync, statfsSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { ServerConfig } from '../common/config/index.js';
import { HadesError, toHadesError } from '../common/errors.js';
import { pemCertificates } from '../common/pem.js';
import { suggest, type Match } from '../rules/index.js';
import { FdLimitWatch } from '../runtime/fd-limit.js';
import { Logger } from '../runtime/log.js';
import { Detector } from './alerts/detector.js';
import { DetectionMark } from './alerts/mark.js';
import { adminTokenFile } from './local-files.js';
import { ruleSource } from './alerts/rule-source.js';
import { createAlertOutputs, type AlertOutputs } from './alerts/outputs/index.js';
import { AlertStore, MAX_ALERT_HISTORY, triageHistory } from './alerts/store.js';
import type { Alert } from './alerts/types.js';
import { buildApi, type ApiPorts, type CaRetireBody, type CaRotateBody, type CaStatusBody, type Role } from './api.js';
import { Cmdb } from './cmdb.js';
import { DataLock } from './data-lock.js';
import { openDatabase, type Db } from './db.js';
import { ApiTokens } from './fleet/api-tokens.js';
import { AuditLog } from './fleet/audit.js';
import { agentBody, apiTokenBody, createdTokenBody, enrollmentTokenBody, groupBody, groupConfigBody, taskBody } from './fleet/bodies.js';
import { FleetQueries } from './fleet/queries.js';
import { FleetRegistry, type GroupConfig } from './fleet/registry.js';
import { CertificateRenewal } from './fleet/renewal.js';
import { EnrollmentTokens } from './fleet/tokens.js';
import { Gateway, type PreparedBatch } from './gateway.js';
import { IngestWorker, storedOnly } from './ingest/client.js';
import type { DetectReply, WireMatch } from './ingest/protocol.js';
import type { Row } from './store/row.js';
import { Pki } from './pki.js';
import { Archive } from './store/archive.js';
import { EventStore, type InsertResult } from './store/events.js';
import { fieldProblem, integerField } from './store/query.js';
import type { FastifyInstance } from 'fastify';
import type { Server as TlsServer } from 'node:tls';
import { makeFolders } from '../runtime/folders.js';
import { formatOffset } from '../common/clock-offset.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreFiles } from './store-files.js';
import { LogThrottle } from './log-throttle.js';
import { hasUnsafe } from '../common/safe-text.js';

const MB = 1024 * 1024;
/** The least the events are deleted down to to keep room on the disk (store.min_free_mb). */
const MIN_EVENT_BYTES = 1 * MB;
const RETENTION_MS = 60_000;
/**
 * How often the event database's size is held to store.max_mb (a few pragmas when under it):
 * a fleet's burst stores hundreds of MB a minute, which a check a minute would let pile up.
 */
const SIZE_CHECK_MS = 5_000;
/** How often the server looks at its file descriptors against its limit. */
const FD_CHECK_MS = 5_000;
/** How often the database's paths are looked at (store-files.ts): a stat or two. */
const STORE_FILES_CHECK_MS = 2_000;
/** How long after a failed copy of a lost database (disk full) the next try is. */
const STORE_COPY_RETRY_MS = 10_000;
/** How far an agent's clock may be from the server's before it is said (checkClock). */
const CLOCK_SKEW_MS = 5 * 60_000;
/** How often a running server checks whether its certificate nears its end (12 hours). */
const SERVER_CERT_CHECK_MS = 12 * 3_600_000;

export interface ServerOptions {
  readonly config: ServerConfig;
  readonly version: string;
  readonly stderr?: NodeJS.WritableStream;
}

/**
 * The ingest worker's matches with their events, which the main thread does not keep parsed: each
 * matched event parsed once (a match names its position), from its stored JSON.
 */
function withEvents(matches: readonly WireMatch[], storedJson: (index: number) => string): (Match & { readonly index: number })[] {
  const events = new Map<number, Record<string, unknown>>();
  return matches.map((match) => {
    let event = events.get(match.index);
    if (event === undefined) events.set(match.index, (event = JSON.parse(storedJson(match.index)) as Record<string, unknown>));
    return { ...match, event };
  });
}

/** Stored events matched at a time when those a stop left unmatched are replayed. */
const REPLAY_CHUNK = 1000;
/** Stored events appended to the raw archive a turn when it catches up at start. */
const ARCHIVE_CHUNK = 2000;

/**
 * A batch as the ingest worker prepared it: its rows, the id its room in the pipeline (and its
 * events, when kept) is held under, and its matches when it went through the rules as prepared.
 */
interface Prepared extends PreparedBatch {
  readonly batch: number;
  readonly rows: Row[];
  readonly detection?: DetectReply;
}

export interface ServerAddresses {
  readonly api: string;
  readonly gateway: string;
  readonly caSha256: string;
  readonly adminToken: string;
}

function splitHostPort(address: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(address);
  if (!match || Number(match[2]) > 65_535) throw new HadesError('HADES_ERR_CONFIG_VALUE', `'${address}' is not host:port`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

function joinHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export class HadesServer {
  readonly log: Logger;
  private db: Db | undefined;
  private pki: Pki | undefined;
  private store: EventStore | undefined;
  private archive: Archive | undefined;
  private registry: FleetRegistry | undefined;
  private renewal: CertificateRenewal | undefined;
  private tokens: EnrollmentTokens | undefined;
  private apiTokens: ApiTokens | undefined;
  private auditLog: AuditLog | undefined;
  private cmdb: Cmdb | undefined;
  private alerts: AlertStore | undefined;
  private queries: FleetQueries | undefined;
  private detector: Detector | undefined;
  private outputs: AlertOutputs | undefined;
  private gateway: Gateway<Prepared, InsertResult> | undefined;
  private ingest: IngestWorker | undefined;
  /** Detections of stored batches not yet done. */
  private readonly detections = new Set<Promise<void>>();
  private mark: DetectionMark | undefined;
  /** The replay of events stored but not matched before the last stop (see alerts/mark.ts). */
  private replaying: Promise<void> | undefined;
  /** The raw archive catching up from the store at start (archiveCatchUp). */
  private archiving: Promise<void> | undefined;
  private stopping = false;
  /** stop() was called: nothing starts again. */
  private closed = false;
  /** Ends the waits of a restart (the pause between copies of a lost database) at stop(). */
  private closing = new AbortController();
  /** The restart on a database put back at its path (restartOnLostStore), while it runs. */
  private restarting: Promise<void> | undefined;
  /** The ports bound at the last start, bound again by a restart (where the configuration says port 0). */
  private boundPorts: { agents: number; api: number } | undefined;
  /** Whether the database's files are still at their paths (store-files.ts). */
  private storeFiles: StoreFiles | undefined;
  /** Aborted, with the error as its reason, when the server stopped on its own and cannot go on (a restart that failed). */
  private readonly failure = new AbortController();
  private api: FastifyInstance | undefined;
  /** This server's hold on its data folder (./data-lock.ts). */
  private lock: DataLock | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** A retention run is under way (holdSize and housekeeping start one at a time). */
  private retaining = false;
  /** When each agent's clock was last said to be off (checkClock): once an hour each. */
  private readonly clockWarned = new LogThrottle<null>(3_600_000);
  /** When each agent's refused events were last logged, and how many since (at most once a minute each: a broken agent must not flood the log). */
  private readonly rejectionsLogged = new LogThrottle<{ more: number }>(60_000);
  private adminToken = '';
  addresses: ServerAddresses | undefined;

  constructor(private readonly options: ServerOptions) {
    this.log = Logger.fromConfig(options.config.log, options.stderr ? { stream: options.stderr } : {});
  }

  async start(): Promise<ServerAddresses> {
    this.closed = false;
    if (this.closing.signal.aborted) this.closing = new AbortController();
    try {
      return await this.startParts();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  private async startParts(): Promise<ServerAddresses> {
    const { config } = this.options;
    this.stopping = false;
    // First: alert outputs that cannot work (a TLS file) are refused before anything is made on disk.
    this.outputs = createAlertOutputs(config.alerts.outputs, this.log.child({ component: 'alert-outputs' }));
    const dataDir = config.data_dir;
    try {
      makeFolders(dataDir, 0o700);
      chmodSync(dataDir, 0o700);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new HadesError('HADES_ERR_STORE_OPEN', `the data folder ${JSON.stringify(dataDir)} cannot be made or used: ${e.code ?? e.message}`, { cause: error });
    }
    // Before anything in the folder is touched: a second server would mark the fleet offline.
    this.lock = DataLock.acquire(dataDir);
    const agentsListen = splitHostPort(config.listen.agents);
    const apiListen = splitHostPort(config.listen.api);
    const names = [...config.advertise.hostnames, agentsListen.host, apiListen.host, ...config.advertise.gateways.map((g) => splitHostPort(g).host)].filter((n) => n && n !== '0.0.0.0' && n !== '::');
    // A restart (restartOnLostStore) keeps the CA it has: with the data folder removed, opening
    // it again would make a new CA, and every agent's certificate would be refused.
    const restarted = this.pki !== undefined;
    if (this.pki === undefined) this.pki = await Pki.open(dataDir, { hostnames: names.filter((n) => !isIP(n)), ips: names.filter((n) => isIP(n)) });
    else {
      const written = this.pki.restoreFiles();
      if (written.length > 0) this.log.warn('files of the CA and server certificate were gone: written back from the ones this server holds', { code: 'HADES_ERR_STORE_LOST', files: written });
    }
    if (this.pki.state.recovered) this.log.warn('a CA rotation step that a crash interrupted was finished or undone at this start', { reason: this.pki.state.recovered, ca: this.pki.caFingerprint });
    if (this.pki.rotating) this.log.info('a CA rotation is in progress: agents move to the new CA as they renew (hades server ca status)', { ca: this.pki.caFingerprint, new_ca: this.pki.issuingFingerprint });
    // A copy a restart was putting back when the server was killed (store-files.ts).
    const dbFile = path.join(dataDir, 'hades.db');
    const recovered = StoreFiles.recover(dbFile);
    if (recovered !== undefined) this.log.warn('the copy of the database a restart was putting back when the server stopped was put in place', { code: 'HADES_ERR_STORE_LOST', file: dbFile, copy: recovered });
    this.db = openDatabase(dbFile);
    const db = this.db;
    this.storeFiles = new StoreFiles(dbFile);
    this.registry = new FleetRegistry(db);
    // Whatever was online when the server last stopped is offline until it connects again.
    this.registry.markAllOffline();
    // Certificates from before the CA of each was recorded: the only CA there has been so far.
    if (!this.pki.rotated) this.registry.assignCa(this.pki.caFingerprint);
    this.tokens = new EnrollmentTokens(db);
    this.queries = new FleetQueries(db, this.registry);
    this.apiTokens = new ApiTokens(db);
    this.auditLog = new AuditLog(db);
    // A new local admin token (the first start; the one on file revoked, replaced or exposed) is
    // logged and audited: an admin who revoked it sees, in both, that the next start made another.
    const bootstrap = this.apiTokens.bootstrapAdmin(adminTokenFile(dataDir));
    this.adminToken = bootstrap.token;
    if (bootstrap.created) {
      const why = bootstrap.reason ?? 'no admin token on file (first start)';
      // A warning when it replaces one (revoked, exposed): the first start's is expected.
      const fields = { token_id: bootstrap.id, file: adminTokenFile(dataDir), reason: why };
      if (bootstrap.reason === undefined) this.log.info('local admin token created', fields);
      else this.log.warn('local admin token created', fields);
      this.auditLog.record({ actor: 'system', action: 'token.api.create', target: bootstrap.id, details: { name: 'bootstrap-admin', role: 'admin', file: adminTokenFile(dataDir), reason: why } });
    }
    if (config.store.archive.enabled) {
      const log = this.log.child({ component: 'archive' });
      // A file the archive cannot write (a full disk) loses its events to the archive (the store
      // keeps them): said in the log, with its code, rather than only counted.
      this.archive = Archive.open({ dir: config.store.archive.dir ?? path.join(dataDir, 'archive'), onError: (error) => log.error('archive write failed', { err: error }) });
    }
    const archive = this.archive;
    // Each line with its rowid (a batch's rows are consecutive): the archive keeps how far its files go.
    this.store = new EventStore(db, archive ? { onStored: (lines, last) => archive.append(lines, Array.from(lines, (_, i) => last - lines.length + 1 + i)) } : {});
    if (archive) {
      // Events stored but not in a file when the server last stopped (killed with a partition's
      // buffer) are appended again from the store, in the background.
      const through = this.store.lastRowid();
      const from = archive.markAtOpen;
      if (from === undefined || from >= through) archive.startAt(through);
      else this.archiving = this.archiveCatchUp(archive, from, through);
    }
    this.cmdb = new Cmdb(config.cmdb.file, this.log.child({ component: 'cmdb' }));
    // Loaded (on a thread of its own) before the gateway opens: the first events get their metadata.
    await this.cmdb.start();
    this.alerts = new AlertStore(db);
    const outputs = this.outputs;
    // Batches are checked, and events matched, on a thread of its own (ingest/worker.ts).
    this.ingest = new IngestWorker(this.log.child({ component: 'ingest' }));
    const ingest = this.ingest;
    this.detector = new Detector({
      rules: ruleSource(config.rules),
      remote: ingest,
      store: this.alerts,
      enrolledHost: (agentId) => this.registry?.enrolledHostOf(agentId),
      events: this.store,
      publish: (alert: Alert) => outputs.send(alert),
      dedupWindowMs: config.alerts.dedup_window_s * 1000,
      maxEvents: config.alerts.max_events,
      log: this.log.child({ component: 'detection' }),
    });
    await this.detector.start();
    const detector = this.detector;
    this.mark = new DetectionMark(db, () => this.store?.lastRowid() ?? 0);
    const mark = this.mark;

    const pki = this.pki;
    const registry = this.registry;
    this.renewal = new CertificateRenewal({ pki, registry, log: this.log.child({ component: 'renewal' }) });
    const renewal = this.renewal;
    const store = this.store;
    const cmdb = this.cmdb;
    this.gateway = new Gateway({
      // During a CA rotation both CAs (and retired ones, to refuse them with their code: Pki.clientCaPem).
      caPem: pki.clientCaPem,
      certPem: pki.serverCertPem,
      keyPem: pki.serverKeyPem,
      serverVersion: this.options.version,
      log: this.log.child({ component: 'gateway' }),
      hooks: {
        authorize: (peer) => renewal.authorize(new Uint8Array(peer.raw)),
        renew: async (agentId, csrPem, peer) => (await renewal.renew(agentId, csrPem, peer)).certPem,
        // Group commit: the batches of one gateway turn share a transaction, so a commit is paid
        // per turn instead of per batch.
        group: (work) => store.grouped(work),
        prepare: async (agentId, ndjson, inflated, _arrived, seq) => {
          const host = registry.hostOf(agentId);
          // By the name the agent enrolled with: its hellos (and its events) may give any name,
          // and a host's root must not take another host's owner and environment.
          const meta = host ? cmdb.lookup(host.enrolledHostname, host.addresses) : undefined;
          const prepared = await ingest.prepare(agentId, ndjson, meta, undefined, true, inflated, seq);
          if (prepared.rejected > 0) this.logRejected(agentId, prepared.rejected, prepared.rejectedFirst);
          return {
            batch: prepared.id,
            rows: prepared.rows,
            rejected: prepared.rejected,
            ...(prepared.detection ? { detection: prepared.detection } : {}),
            ...(prepared.refused ? { refused: new HadesError(prepared.refused.code, prepared.refused.message) } : {}),
          };
        },
        store: (agentId, prepared) => store.insertRows(agentId, prepared.rows),
        // Duplicates were seen before: only what was stored now counts. A new batch went through
        // the rules as it was prepared (its matches wait here for the commit); one that may have
        // been sent before goes through them now, for the events the store took.
        settled: (agentId, prepared, result, arrived) => {
          const matched = prepared.detection;
          if (result === undefined || result.stored === 0) {
            if (matched !== undefined) ingest.release(prepared.batch);
            else if (prepared.refused === undefined) ingest.forget(prepared.batch);
            return;
          }
          const stored = result.stored === prepared.rows.length ? null : result.storedIndexes;
          // Until its matching ends the batch holds the detection mark back.
          const pending = mark.pending(result.firstRowid, result.lastRowid);
          let found: Promise<DetectReply>;
          if (matched !== undefined) {
            // Matched as it was prepared: what the duplicates matched is left out.
            ingest.release(prepared.batch);
            found = Promise.resolve(storedOnly(matched, stored));
          } else {
            found = ingest.detect(prepared.batch, stored, prepared.rows);
          }
          const detection = found
            .then((reply) => detector.raiseSoon(agentId, withEvents(reply.matches, (index) => (prepared.rows[index] as Row)[14]), arrived, reply))
            .then(() => mark.done(pending))
            .catch((error: unknown) => {
              this.log.error('the events of a batch could not go through the rules', { agent: agentId, event_count: result.stored, err: error });
              // Stopping: the batch stays pending, so the next start matches it. Otherwise it is
              // given up (and logged above): a mark held back for ever would have the next start
              // match again everything stored since.
              if (!this.stopping) mark.done(pending);
            });
          // Stored and acknowledged: its detection must end before the worker closes (stop()).
          this.detections.add(detection);
          void detection.finally(() => this.detections.delete(detection));
        },
        // What waits for the agent (configuration, tasks, a renewal) goes once it has said hello:
        // a stream that never does (a client that is not an agent) is sent nothing.
        onHello: (agentId, hello) => {
          registry.hello(agentId, { hostname: hello.hostname, os: hello.os, kernel: hello.kernel, version: hello.agent_version });
          this.pushPending(agentId);
        },
        onHeartbeat: (agentId, health) => this.checkClock(agentId, registry.heartbeat(agentId, health)),
        // An agent completes only its own tasks.
        onTaskResult: (agentId, taskId, status, result) => registry.complete(taskId, status === 'done' ? 'done' : 'failed', result, agentId),
        awaitsTaskResult: (agentId, taskId) => registry.awaits(taskId, agentId),
        onOnline: (agentId, online) => registry.markOnline(agentId, online),
      },
    });
    // Events stored before the last stop but never matched (the server was killed between a
    // commit and its matching) go through the rules now, in the background.
    const unmatched = { after: mark.saved, through: store.lastRowid() };
    if (unmatched.through > unmatched.after) this.replaying = this.replay(unmatched.after, unmatched.through);
    // A restart binds the ports it had (those the configuration leaves to the system too).
    const agentsPort = agentsListen.port === 0 && this.boundPorts ? this.boundPorts.agents : agentsListen.port;
    const apiPortWanted = apiListen.port === 0 && this.boundPorts ? this.boundPorts.api : apiListen.port;
    const gatewayPort = await this.gateway.listen(agentsPort === agentsListen.port ? config.listen.agents : joinHostPort(agentsListen.host, agentsPort));
    this.api = await buildApi({ ports: this.ports(), version: this.options.version, log: this.log.child({ component: 'api' }), tls: { certPem: pki.serverCertPem, keyPem: pki.serverKeyPem } });
    try {
      await this.api.listen({ host: apiListen.host, port: apiPortWanted });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EADDRNOTAVAIL' ? 'the address is not one of this host' : code === 'EACCES' ? 'a privileged port' : (error as Error).message;
      throw new HadesError('HADES_ERR_SERVER_LISTEN', `the API cannot listen on ${config.listen.api}: ${why}`, { cause: error });
    }
    const apiPort = (this.api.server.address() as { port: number }).port;
    this.boundPorts = { agents: gatewayPort, api: apiPort };
    this.timers.push(setInterval(() => this.checkStoreFiles(), STORE_FILES_CHECK_MS));
    this.timers.push(setInterval(() => this.housekeeping(), RETENTION_MS));
    this.timers.push(setInterval(() => this.holdSize(), SIZE_CHECK_MS));
    // Out of descriptors, new connections are dropped without a word from Node: said in the log.
    const fds = new FdLimitWatch(this.log);
    this.timers.push(setInterval(() => fds.check(), FD_CHECK_MS));
    // At start too: a database left over its limit (a smaller max_mb, a crash mid-burst) is not kept so for a minute.
    this.housekeeping();
    this.holdSize();
    // The server certificate is reissued at a start within 30 days of its end; a server that
    // runs through those days reissues it here, or its agents and API clients would meet an
    // expired certificate.
    this.timers.push(setInterval(() => void this.renewServerCertificate(), SERVER_CERT_CHECK_MS));
    this.warnCaExpiry();
    for (const timer of this.timers) timer.unref();
    this.addresses = {
      api: `https://${apiListen.host.includes(':') ? `[${apiListen.host}]` : apiListen.host}:${apiPort}`,
      gateway: `${agentsListen.host}:${gatewayPort}`,
      caSha256: pki.caFingerprint,
      adminToken: this.adminToken,
    };
    // A restart's CA and certificate are those it had: their state is that of the first start.
    this.log.info('server started', { api: this.addresses.api, gateway: this.addresses.gateway, pki: restarted ? 'kept' : pki.state });
    return this.addresses;
  }

  /** Says that an agent's events were refused as invalid, and why the first was: once a minute per agent, with how many more since. */
  private logRejected(agentId: string, rejected: number, first: string | undefined): void {
    const now = Date.now();
    const recent = this.rejectionsLogged.recent(agentId, now);
    if (recent !== undefined) {
      recent.state.more += rejected;
      return;
    }
    const admitted = this.rejectionsLogged.admit(agentId, now, { more: 0 });
    if (admitted === undefined) return;
    const last = admitted.previous?.state;
    this.log.warn('events of an agent refused as invalid (not stored; the agent counts them as server_rejected_events)', {
      code: 'HADES_ERR_EVENT_INVALID',
      agent: agentId,
      rejected,
      ...(first === undefined ? {} : { first }),
      ...(last !== undefined && last.more > 0 ? { more_since_last_logged: last.more } : {}),
    });
  }

  /**
   * Says, once an hour per agent, that an agent's clock is more than CLOCK_SKEW_MS from the
   * server's: its events carry that clock's time in `@timestamp`, by which searches and the rules'
   * windows go (a host whose clock was set back has its events out of a search of the last hour),
   * while the store keeps and deletes them by the server's clock.
   */
  private checkClock(agentId: string, offsetMs: number | undefined): void {
    if (offsetMs === undefined || Math.abs(offsetMs) <= CLOCK_SKEW_MS) return;
    const now = Date.now();
    if (this.clockWarned.recent(agentId, now) !== undefined || this.clockWarned.admit(agentId, now, null) === undefined) return;
    this.log.warn(`an agent's clock is ${formatOffset(offsetMs)} from the server's: its events carry that time`, { code: 'HADES_ERR_AGENT_CLOCK', agent: agentId, clock_offset_ms: offsetMs, hostname: this.registry?.get(agentId)?.hostname });
  }

  /** Addresses given to agents at enrollment. */
  private gateways(): string[] {
    const { config } = this.options;
    if (config.advertise.gateways.length > 0) return [...config.advertise.gateways];
    const { host } = splitHostPort(config.listen.agents);
    const reachable = host === '' || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    // An IPv6 address in brackets: unbracketed, agents would read its last group as the port.
    return [`${reachable.includes(':') ? `[${reachable}]` : reachable}:${this.gateway?.port ?? 0}`];
  }

  /**
   * The configuration an agent runs: that of the first of its groups (in the order they were
   * given) that has one. Each configuration is whole, so an agent takes one, never a merge.
   */
  private configOf(groups: readonly string[]): GroupConfig | undefined {
    for (const group of groups) {
      const config = this.registry?.groupConfig(group);
      if (config) return config;
    }
    return undefined;
  }

  /**
   * Sends a connected agent the configuration it runs (configOf its groups), or, when there is
   * none, word that its own file applies (an agent already on its file does nothing with it).
   */
  private pushConfig(agentId: string, config: GroupConfig | undefined): boolean {
    return this.gateway?.send(agentId, config ? { config: { version: config.version, yaml: config.yaml } } : { own_config: { reason: 'none of its groups has a configuration' } }) ?? false;
  }

  /** Sends a connected agent its group's configuration, its unfinished tasks, and a renewal request if one waits. */
  private pushPending(agentId: string): void {
    const registry = this.registry;
    const gateway = this.gateway;
    if (!registry || !gateway) return;
    const agent = registry.get(agentId);
    // The CAs to trust first: a renewal it leads to is checked against them.
    if (this.pki?.rotated) gateway.send(agentId, { trust: this.trustMessage() });
    if (agent?.renewRequestedAt !== undefined) gateway.send(agentId, { renew_now: { reason: `asked at ${agent.renewRequestedAt}`, immediately: agent.renewImmediately === true } });
    this.pushConfig(agentId, this.configOf(agent?.groups ?? []));
    for (const task of registry.unfinishedTasks(agentId)) {
      if (gateway.send(agentId, { task: { task_id: task.id, kind: task.kind, params_json: JSON.stringify(task.params ?? {}) } })) registry.markSent(task.id);
    }
  }

  /** What agents are told to trust (CA rotation): the CAs trusted now, and the one that issues. */
  private trustMessage(): { ca: string[]; issuing_sha256: string } {
    const pki = this.pki!;
    return { ca: pemCertificates(pki.trustPem).map((block) => `${block}\n`), issuing_sha256: pki.issuingFingerprint };
  }

  /** Sends every connected agent the CAs to trust; returns how many were sent it. */
  private broadcastTrust(): number {
    const gateway = this.gateway;
    if (!gateway) return 0;
    const trust = this.trustMessage();
    return gateway.connectedAgents().filter((id) => gateway.send(id, { trust })).length;
  }

  /** The CAs, and the agents (not revoked) on each. */
  private caStatus(): CaStatusBody {
    const pki = this.pki!;
    const cas = pki.cas();
    const old = pki.rotating ? cas[0]!.sha256 : undefined;
    const { counts, onSampleCa } = this.registry!.agentsByCa(cas[0]!.sha256, old);
    return {
      rotation: pki.rotating ? 'in-progress' : 'none',
      issuing_sha256: pki.issuingFingerprint,
      server_certificate_ca_sha256: pki.caFingerprint,
      cas: cas.map((ca) => ({ state: ca.state, subject: ca.subject, sha256: ca.sha256, not_before: ca.notBefore, not_after: ca.notAfter, agents: counts[ca.sha256] ?? 0 })),
      ...(old === undefined ? {} : { agents_on_old: onSampleCa }),
    };
  }

  /**
   * Starts a CA rotation (`hades server ca rotate`): the new CA is written with its audit record
   * (`record`) in one transaction, after the certificates whose CA was not recorded are
   * recorded as the old one's; then new connections take client certificates of both, and every
   * connected agent is sent the CAs to trust (it renews under the new one by itself).
   */
  private async rotateCa(record: (ca: { sha256: string; old: string; agents: number }) => void): Promise<CaRotateBody> {
    const pki = this.pki!;
    const registry = this.registry!;
    const db = this.db!;
    const prepared = await pki.prepareRotation();
    const old = pki.caFingerprint;
    const made = db.transaction(() => {
      registry.assignCa(old);
      const agents = registry.agentsByCa(old).counts[old] ?? 0;
      record({ sha256: prepared.sha256, old, agents });
      return { ca: pki.commitRotation(prepared), agents };
    })();
    this.gateway?.useTls(pki.clientCaPem, pki.serverCertPem, pki.serverKeyPem);
    const notified = this.broadcastTrust();
    this.log.warn('CA rotation started: agents move to the new CA as they renew; retire the old one once none is left on it (hades server ca status, hades server ca retire-old)', { new_ca: made.ca.sha256, old_ca: old, agents_on_old: made.agents, notified });
    return { ca: { state: made.ca.state, subject: made.ca.subject, sha256: made.ca.sha256, not_before: made.ca.notBefore, not_after: made.ca.notAfter, agents: 0 }, agents_on_old: made.agents, notified };
  }

  /**
   * Retires the old CA of the rotation in progress (`hades server ca retire-old`): refused while
   * agents not revoked still hold a certificate it issued, unless `force`. The change and its
   * audit record go in one transaction; then the gateway and the API present the server
   * certificate of the new CA, connected agents are told to trust the new CA only, and those
   * still on the old one are disconnected (HADES_ERR_CA_RETIRED: they must be enrolled again).
   */
  private async retireOldCa(force: boolean, record: (retired: { sha256: string; forced: boolean; left_behind: number }) => void): Promise<CaRetireBody> {
    const pki = this.pki!;
    const registry = this.registry!;
    const old = pki.retiring();
    const leftBehind = (): number => {
      const { counts, onSampleCa } = registry.agentsByCa(old.sha256, old.sha256, 10);
      const left = counts[old.sha256] ?? 0;
      if (left > 0 && !force) {
        throw new HadesError(
          'HADES_ERR_CA_AGENTS_REMAIN',
          `${left} agent${left === 1 ? '' : 's'} (not revoked) still hold${left === 1 ? 's' : ''} a certificate of the old CA ${old.sha256} (${onSampleCa.join(', ')}${left > onSampleCa.length ? ', ...' : ''}): connected agents renew within their outputs.server.renew_jitter_s, offline ones when they next connect (hades server ca status shows them). Retiring it now with --force refuses them (HADES_ERR_CA_RETIRED): each must then be enrolled again with a fresh token`,
        );
      }
      return left;
    };
    leftBehind();
    const prepared = await pki.prepareRetire();
    const left = this.db!.transaction(() => {
      const count = leftBehind();
      record({ sha256: old.sha256, forced: force, left_behind: count });
      pki.commitRetire(prepared);
      return count;
    })();
    this.gateway?.useTls(pki.clientCaPem, pki.serverCertPem, pki.serverKeyPem);
    (this.api?.server as unknown as TlsServer | undefined)?.setSecureContext({ cert: pki.serverCertPem, key: pki.serverKeyPem });
    const notified = this.broadcastTrust();
    let disconnected = 0;
    for (const id of this.gateway?.connectedAgents() ?? []) {
      const agent = registry.get(id);
      // One renewed already reconnects with its next certificate (of the new CA) by itself.
      if (agent !== undefined && (agent.certCa ?? old.sha256) === old.sha256 && agent.nextCert === undefined) {
        this.gateway?.disconnect(id, new HadesError('HADES_ERR_CA_RETIRED', `agent ${id} holds a certificate of the CA ${old.sha256}, retired now: it must be enrolled again with a fresh token`));
        disconnected++;
      }
    }
    const fields = { retired_ca: old.sha256, ca: pki.caFingerprint, forced: force, left_behind: left, notified, disconnected };
    if (left > 0) this.log.warn('old CA retired with agents still on it: they are refused and must be enrolled again', { code: 'HADES_ERR_CA_RETIRED', ...fields });
    else this.log.info('old CA retired: the server certificate is of the new CA from now on', fields);
    return { retired: { state: 'retired', subject: old.subject, sha256: old.sha256, not_before: old.notBefore, not_after: old.notAfter, agents: left }, ca_sha256: pki.caFingerprint, forced: force, agents_left_behind: left, notified, disconnected };
  }

  /** Reissues the server certificate when it nears its end, and has the gateway and the API present the new one. */
  private async renewServerCertificate(): Promise<void> {
    const pki = this.pki;
    if (!pki || this.stopping) return;
    this.warnCaExpiry();
    try {
      const reason = await pki.renewServerCertificate();
      if (reason === undefined) return;
      this.gateway?.useServerCertificate(pki.serverCertPem, pki.serverKeyPem);
      // The API listens with HTTPS (api.ts): its server is a tls.Server underneath.
      (this.api?.server as unknown as TlsServer | undefined)?.setSecureContext({ cert: pki.serverCertPem, key: pki.serverKeyPem });
      this.log.info('server certificate renewed', { reason, not_after: pki.serverNotAfter });
    } catch (error) {
      this.log.error('the server certificate could not be renewed; it is tried again later', { err: toHadesError(error), not_after: pki.serverNotAfter });
    }
  }

  /** Says, at start and twice a day, when the CA ends within a year. */
  private warnCaExpiry(): void {
    const warning = this.pki?.caExpiryWarning();
    if (warning) this.log.warn('the CA nears its end', { code: 'HADES_ERR_PKI', reason: warning, not_after: this.pki?.caNotAfter });
  }

  /**
   * Deletes the first events stored while the events' pages pass store.max_mb (between the
   * minutes of housekeeping), or while the room left for the database (the file system's free
   * space and the free pages inside the file, which new events reuse first, less what the
   * database takes without a row more: its WAL and the pages the WAL holds for the file) is under
   * store.min_free_mb: SQLite needs room to write even a delete, so a disk filled to the last
   * byte would leave the store unable to make room again. Until the next check the file may grow
   * only until half of store.min_free_mb is left: a burst faster than the checks gets temporary
   * Nacks (and has the first events deleted) rather than filling the disk; the other half is for
   * what SQLite writes past its WAL's limit (a large commit, the deletes).
   */
  private holdSize(): void {
    const store = this.store;
    if (store === undefined) return;
    try {
      const room = this.diskRoom(store);
      store.limitGrowth(room === undefined ? Infinity : room.free - room.wanted / 2);
      if (this.retaining) return;
      const limit = this.options.config.store.max_mb * MB;
      const short = room === undefined || room.wanted === 0 ? 0 : Math.max(0, Math.ceil(room.wanted - room.free - store.freeBytes()));
      // The whole file under the limit says enough (a few pragmas); over it, what the events alone hold (dbstat, read once).
      if (short === 0 && store.liveBytes() <= limit) return;
      const eventBytes = store.eventBytes();
      const maxBytes = short > 0 ? Math.max(MIN_EVENT_BYTES, Math.min(limit, eventBytes - short)) : limit;
      if (eventBytes <= maxBytes) return;
      if (short > 0) this.log.warn('little room left on the disk: the first events stored are deleted to keep store.min_free_mb free', { code: 'HADES_ERR_STORE_WRITE', short_mb: Math.ceil(short / MB), events_mb_kept: Math.floor(maxBytes / MB) });
      this.retain({ maxBytes });
    } catch (error) {
      this.log.error('retention failed', { err: error });
    }
  }

  /**
   * The room the database has on its disk (the file system's free space less what the database
   * takes without a row more, EventStore.owedBytes) and the room store.min_free_mb wants kept
   * (at most a tenth of the file system); undefined when it cannot be told.
   */
  private diskRoom(store: EventStore): { free: number; wanted: number } | undefined {
    let fs;
    try {
      fs = statfsSync(this.options.config.data_dir);
    } catch {
      return undefined;
    }
    const wanted = Math.min(this.options.config.store.min_free_mb * MB, (fs.blocks * fs.bsize) / 10);
    return { free: fs.bavail * fs.bsize - store.owedBytes(), wanted };
  }

  /** One retention run at a time: the next check finds what this one left. */
  private retain(options: { maxAgeDays?: number; maxBytes: number }): void {
    if (this.retaining || this.store === undefined) return;
    // Chunk by chunk, yielding to the event loop between them: ingestion is not held up.
    this.retaining = true;
    void this.store
      .enforceRetentionAsync(options)
      .then((result) => {
        if (result.deletedByAge + result.deletedBySize > 0) this.log.info('retention', { ...result });
      })
      .catch((error: unknown) => this.log.error('retention failed', { err: error }))
      .finally(() => {
        this.retaining = false;
      });
  }

  private housekeeping(): void {
    const { store } = this.options.config;
    try {
      this.retain({ maxAgeDays: store.retention_days, maxBytes: store.max_mb * MB });
      void this.archive?.enforceRetention({ maxAgeDays: store.archive.retention_days }).catch((error: unknown) => this.log.error('archive retention failed', { err: error }));
      this.registry?.expireOverdue(Date.now());
      // Tasks and fleet queries that ended are kept as long as events are.
      const ended = Date.now() - store.retention_days * 86_400_000;
      const forgotten = (this.registry?.forgetEnded(ended) ?? 0) + (this.queries?.forgetEnded(ended) ?? 0);
      if (forgotten > 0) this.log.info('task retention', { deleted: forgotten });
      const deleted = this.alerts?.deleteOlderThan(Date.now() - this.options.config.alerts.retention_days * 86_400_000) ?? 0;
      if (deleted > 0) this.log.info('alert retention', { deleted });
    } catch (error) {
      this.log.error('housekeeping failed', { err: error });
    }
  }

  private ports(): ApiPorts {
    const registry = this.registry!;
    const tokens = this.tokens!;
    const apiTokens = this.apiTokens!;
    const auditLog = this.auditLog!;
    const pki = this.pki!;
    const store = this.store!;
    const alerts = this.alerts!;
    const detector = this.detector!;
    const queries = this.queries!;
    const db = this.db!;
    const atomically = <T>(work: () => T): T => db.transaction(work)();
    return {
      authenticate: (bearer) => apiTokens.authenticate(bearer),
      authorize: (principal, needed: Role) => apiTokens.authorize(principal, needed),
      audit: (actor, action, target, details) => auditLog.record({ actor: actor.name, actor_id: actor.id, action, ...(target ? { target } : {}), ...(details ? { details } : {}) }),
      listAudit: (options) => auditLog.list(options),
      caPem: () => pki.caPem,
      caFingerprint: () => pki.caFingerprint,
      caStatus: () => this.caStatus(),
      rotateCa: (record) => this.rotateCa(record),
      retireOldCa: (force, record) => this.retireOldCa(force, record),
      gateways: () => this.gateways(),
      enroll: async (request) => {
        // Check first, sign, then use the token and record the agent in one transaction: a bad
        // request must not burn a good token, and a token enrolls one agent only.
        tokens.check(request.token);
        const agentId = registry.newAgentId();
        const issued = await pki.signAgentCsr(request.csr, agentId);
        const consumed = this.db!.transaction(() => {
          const used = tokens.consume(request.token, agentId);
          registry.enroll(
            { id: agentId, hostname: request.hostname, addresses: request.addresses, os: request.os, kernel: request.kernel, version: request.version, ...(used.group ? { group: used.group } : {}) },
            { fingerprint: issued.fingerprint, serial: issued.serial, notAfter: issued.notAfter, caSha256: issued.caSha256, tokenId: used.tokenId },
          );
          // A new member of the fleet is audited with the token that let it in (in the same
          // transaction: no agent without its record).
          auditLog.record({ actor: 'enrollment', actor_id: used.tokenId, action: 'agent.enroll', target: agentId, details: { hostname: request.hostname.slice(0, 256), ...(used.group ? { group: used.group } : {}) } });
          return used;
        })();
        this.log.info('agent enrolled', { agent: agentId, hostname: request.hostname, group: consumed.group });
        return { agent_id: agentId, certificate: issued.certPem };
      },
      listAgents: (filter) => registry.list(filter).map((a) => agentBody(a, this.cmdb?.lookup(a.enrolledHostname, a.addresses))),
      getAgent: (id) => {
        const agent = registry.get(id);
        return agent ? agentBody(agent, this.cmdb?.lookup(agent.enrolledHostname, agent.addresses)) : undefined;
      },
      // An admin's change is stored with its audit record (`record`) in one transaction, and only
      // then sent to agents: no change without its record, and none sent that was not stored.
      renewAgent: (id, immediately, record) => {
        atomically(() => {
          registry.requestRenewal(id, immediately);
          record();
        });
        return { sent: this.gateway?.send(id, { renew_now: { reason: 'asked by an operator', immediately } }) ?? false, immediately };
      },
      revokeAgent: (id, record) => {
        atomically(() => {
          registry.revoke(id);
          record();
        });
        this.gateway?.disconnect(id, new HadesError('HADES_ERR_AGENT_REVOKED', `agent ${id} is revoked`));
      },
      setAgentTags: (id, tags, record) =>
        atomically(() => {
          registry.setTags(id, tags);
          record();
        }),
      setAgentGroups: (id, groups, record) => {
        const agent = atomically(() => {
          const moved = registry.setGroups(id, groups);
          record();
          return moved;
        });
        const config = this.configOf(agent.groups);
        const pushed = this.pushConfig(id, config);
        return { ...agentBody(agent, this.cmdb?.lookup(agent.enrolledHostname, agent.addresses)), configuration: config ? { group: config.name, version: config.version } : null, pushed };
      },
      deleteGroupConfig: (name, record) => {
        // The members that ran it: those whose first configured group it was.
        const members = registry.list({ group: name, online: true }).filter((a) => this.configOf(a.groups)?.name === name);
        const deleted = atomically(() => {
          if (!registry.deleteGroupConfig(name)) return false;
          record();
          return true;
        });
        if (!deleted) return undefined;
        return { pushed: members.filter((a) => this.pushConfig(a.id, this.configOf(a.groups))).length };
      },
      listGroups: () => registry.listGroups().map(groupBody),
      getGroupConfig: (name) => {
        const config = registry.groupConfig(name);
        return config ? groupConfigBody(config) : undefined;
      },
      setGroupConfig: (name, yaml, record) => {
        const { version } = atomically(() => {
          const stored = registry.setGroupConfig(name, yaml);
          record(stored.version);
          return stored;
        });
        let pushed = 0;
        // Members whose configuration comes from an earlier group of theirs keep it.
        for (const agent of registry.list({ group: name, online: true })) {
          const config = this.configOf(agent.groups);
          if (config?.name === name && this.pushConfig(agent.id, config)) pushed++;
        }
        return { version, pushed };
      },
      createTask: ({ agentIds, kind, params, timeoutS, createdBy, created }) => {
        // All or nothing: every agent (each once) must exist and not be revoked before any task
        // is made; the tasks are made in one transaction, recorded (`created`), then sent.
        const ids = [...new Set(agentIds)];
        const unknown = ids.filter((id) => !registry.get(id));
        if (unknown.length > 0) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no agent ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`);
        const revoked = ids.filter((id) => registry.get(id)?.revokedAt);
        if (revoked.length > 0) throw new HadesError('HADES_ERR_AGENT_REVOKED', `revoked agents take no task: ${revoked.slice(0, 5).join(', ')}${revoked.length > 5 ? ` and ${revoked.length - 5} more` : ''}`);
        // A query's time is the task's: the agent stops it when the server would no longer take its answer.
        const given = (params ?? {}) as Record<string, unknown>;
        const withTime = (kind === 'query' || kind === 'inventory') && given['timeout_s'] === undefined && given['timeout_ms'] === undefined ? { ...given, timeout_ms: timeoutS * 1000 } : given;
        const deadline = Date.now() + timeoutS * 1000;
        // Stored and audited together: a task whose audit record cannot be written is not made.
        const tasks = this.db!.transaction(() => {
          const made = ids.map((agentId) => registry.createTask({ agentId, kind: kind as 'query', params: withTime, deadline, createdBy }));
          created(ids);
          return made;
        })();
        return tasks.map((task) => {
          if (this.gateway?.send(task.agentId, { task: { task_id: task.id, kind, params_json: JSON.stringify(withTime) } })) registry.markSent(task.id);
          return taskBody(registry.getTask(task.id) ?? task);
        });
      },
      listTasks: (filter) => registry.listTasks(filter as Parameters<FleetRegistry['listTasks']>[0]).map(taskBody),
      getTask: (id) => {
        const task = registry.getTask(id);
        return task ? taskBody(task) : undefined;
      },
      searchEvents: (query) => store.search(query),
      createEnrollmentToken: (request, record) =>
        atomically(() => {
          const created = createdTokenBody(tokens.create(request));
          record(created);
          return created;
        }),
      listEnrollmentTokens: () => tokens.list().map(enrollmentTokenBody),
      revokeEnrollmentToken: (id, record) => {
        const token = tokens.get(id);
        if (!token) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no enrollment token ${id}`);
        if (token.usedAt !== undefined) {
          throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `enrollment token ${id} was used at ${token.usedAt}${token.usedBy ? ` by agent ${token.usedBy}` : ''}: it enrolls nothing more; revoke that agent instead`);
        }
        if (token.revokedAt !== undefined) return false;
        return atomically(() => {
          if (!tokens.revoke(id)) return false;
          record();
          return true;
        });
      },
      createApiToken: (request, record) =>
        atomically(() => {
          const created = createdTokenBody(apiTokens.create(request));
          record(created);
          return created;
        }),
      listApiTokens: () => apiTokens.list().map(apiTokenBody),
      revokeApiToken: (id, record) => {
        const token = apiTokens.get(id);
        if (!token) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no API token ${id}`);
        // Admin tokens still accepted: not revoked, not expired.
        const now = Date.now();
        const usable = (t: { revokedAt?: string; expiresAt?: string }) => t.revokedAt === undefined && (t.expiresAt === undefined || Date.parse(t.expiresAt) > now);
        const admins = apiTokens.list().filter((t) => t.role === 'admin' && usable(t));
        if (token.role === 'admin' && usable(token) && admins.length === 1) {
          throw new HadesError('HADES_ERR_API_LAST_ADMIN', `${id} is the last admin token: revoking it would leave nobody able to manage the server; create another admin token first`);
        }
        return atomically(() => {
          if (!apiTokens.revoke(id)) return false;
          record();
          return true;
        });
      },
      searchAlerts: (query) => alerts.search(query),
      getAlert: (id) => {
        const alert = alerts.get(id);
        // Its triages, as their audit records keep them (written with each, in one transaction).
        // With the alerts about the same process tree (upstream, same process, downstream).
        return alert && { ...alert, history: triageHistory(auditLog.list({ target: id, action: 'alert.triage', limit: MAX_ALERT_HISTORY })), related: alerts.related(id) ?? [] };
      },
      triageAlert: (id, change, options) => alerts.triage(id, change, options),
      commentAlert: (id, author, text, record) => alerts.comment(id, author, text, record),
      listRules: async () => {
        const counters = new Map((await detector.ruleStats()).map((s) => [s.id, s]));
        return { ...detector.rules, detection: detector.stats(), outputs: this.outputs?.stats() ?? [], list: detector.ruleInfo.map(({ dedupBy, ...rule }) => ({ ...rule, ...(dedupBy === undefined ? {} : { dedup_by: dedupBy }), stats: counters.get(rule.id) })) };
      },
      reloadRules: () => detector.reload(),
      listSuppressions: (includeExpired) => alerts.listSuppressions(includeExpired),
      addSuppression: (input, record) => {
        // A suppression for a rule or field that does not exist would silently never match.
        const ids = detector.ruleInfo.map((r) => r.id);
        if (input.ruleId !== '*' && !ids.includes(input.ruleId)) {
          const close = suggest(input.ruleId, ids);
          throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `no rule '${input.ruleId}' is loaded${close ? `; did you mean '${close}'?` : ''} ('*' suppresses every rule)`);
        }
        // A suppression reads one value at a dotted path: the same fields as a search, objects left out.
        const problem = input.field == null ? undefined : fieldProblem(input.field);
        if (problem !== undefined) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `field: ${problem}`);
        // A value that the field can never hold would suppress nothing, silently.
        if (input.field != null && input.value != null && integerField(input.field) && !/^(0|[1-9][0-9]{0,14})$/.test(input.value)) {
          throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `value: ${input.field} is an integer; ${JSON.stringify(input.value)} is not one`);
        }
        // A host name or a reason is one line of text a person reads (a value may be anything an event holds).
        for (const [name, text] of [['host', input.host], ['reason', input.reason]] as const) {
          if (text != null && hasUnsafe(text, { invisible: true })) throw new HadesError('HADES_ERR_API_INVALID_REQUEST', `${name}: control, line, direction and invisible characters are not allowed`);
        }
        // A host no agent enrolled with (nor has as its id) would silently never match: a typo
        // would leave the analyst believing the noise silenced, or the host still watched.
        if (input.host != null) {
          const host = input.host;
          const agents = registry.list();
          if (!agents.some((a) => a.id === host || a.enrolledHostname === host)) {
            const renamed = agents.find((a) => a.hostname === host);
            const close = suggest(host, new Set(agents.map((a) => a.enrolledHostname)));
            throw new HadesError(
              'HADES_ERR_API_INVALID_REQUEST',
              renamed !== undefined
                ? `host: agent ${renamed.id} calls itself '${host}' but enrolled as '${renamed.enrolledHostname}': a suppression names a host by the name it enrolled with or by its agent id (docs/alerts.md)`
                : `host: no agent enrolled with the name '${host}' or has that id${close ? `; did you mean '${close}'?` : ''} (hades agents list shows them)`,
            );
          }
        }
        return alerts.addSuppression(input, record);
      },
      deleteSuppression: (id, record) => alerts.deleteSuppression(id, record),
      queryTargets: ({ agents, group }) => {
        if (agents) return agents;
        const matched = registry.list({ ...(group ? { group } : {}), revoked: false }).map((a) => a.id);
        if (group && matched.length === 0) throw new HadesError('HADES_ERR_API_NOT_FOUND', `no agent in group ${group}`);
        return matched;
      },
      createFleetQuery: (request, record) =>
        queries.create(request, (task) => this.gateway?.send(task.agentId, { task: { task_id: task.id, kind: task.kind, params_json: JSON.stringify(task.params) } }) ?? false, record),
      getFleetQuery: (id, page) => queries.get(id, page),
      listFleetQueries: (limit) => queries.list(limit),
    };
  }

  /** The CA certificate (PEM) clients of this server trust. */
  get caPem(): string {
    if (!this.pki) throw new HadesError('HADES_ERR_INTERNAL', 'the server is not started');
    return this.pki.caPem;
  }

  /** Status for the CLI and tests. */
  stats() {
    return { gateway: this.gateway?.stats, store: this.store?.stats(), detection: this.detector?.stats(), outputs: this.outputs?.stats() };
  }

  /** Loads the rules again (SIGHUP, the API); the running rules stay when the new ones have errors. */
  reloadRules() {
    if (!this.detector) throw new HadesError('HADES_ERR_INTERNAL', 'the server is not started');
    return this.detector.reload();
  }

  /**
   * Appends to the raw archive the events stored after `from` through `through` (rowids), a chunk
   * a turn, holding its mark at what is appended: stopped half way (or failing), the next start
   * goes on from there. Events appended live meanwhile are newer, and go their own way.
   */
  private async archiveCatchUp(archive: Archive, from: number, through: number): Promise<void> {
    const log = this.log.child({ component: 'archive' });
    log.info('archive catching up from the store: events stored but not written to files at the last stop', { after_rowid: from, through_rowid: through });
    let cursor = from;
    let appended = 0;
    archive.hold(cursor);
    try {
      while (cursor < through && !this.stopping && this.store !== undefined) {
        const rows = this.store.eventsAfter(cursor, ARCHIVE_CHUNK).filter((r) => r.id <= through);
        if (rows.length === 0) break;
        archive.append(
          rows.map((r) => r.event),
          rows.map((r) => r.id),
        );
        cursor = rows[rows.length - 1]!.id;
        appended += rows.length;
        archive.hold(cursor);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (this.stopping && cursor < through) return;
      archive.hold(undefined);
      log.info('archive caught up', { event_count: appended });
    } catch (error) {
      // The mark stays held at what was appended: the next start goes on from there.
      log.error('archive catch-up failed', { err: error, event_count: appended });
    }
  }

  /**
   * Runs the stored events with rowids in (after, through] through the rules, in chunks. From
   * beginning to end the replay holds the detection mark back at its position: the events not
   * replayed yet lie before those of the batches stored meanwhile, whose matching ends first.
   */
  private async replay(after: number, through: number): Promise<void> {
    const { store, ingest, detector, mark } = this;
    if (!store || !ingest || !detector || !mark) return;
    const log = this.log.child({ component: 'detection' });
    log.warn('matching events stored before the last stop but not matched then', { events_after: after, through });
    let done = 0;
    let pending = mark.pending(after + 1, through);
    try {
      while (!this.stopping && after < through) {
        const rows = store.eventsAfter(after, REPLAY_CHUNK).filter((r) => r.id <= through);
        if (rows.length === 0) break;
        // The thread may die once (a crash, a restart): the chunk goes to the next one. Dying
        // twice on it (an event that kills the thread?), the chunk is given up, not the rest.
        let found: Awaited<ReturnType<IngestWorker['match']>>;
        try {
          found = await ingest.match(rows.map((r) => r.event), { retry: true });
        } catch (error) {
          if (this.stopping) throw error;
          log.error('events stored before the last stop could not all be matched', { event_count: rows.length, first: rows[0]?.id, last: rows[rows.length - 1]?.id, err: error });
          found = { evaluated: 0, matches: [], errors: [] };
        }
        // Alerts are raised per agent; the counts go with the first call.
        const byAgent = new Map<string, Match[]>();
        for (const match of withEvents(found.matches, (index) => (rows[index] as (typeof rows)[number]).event)) {
          const agentId = (rows[match.index] as (typeof rows)[number]).agent_id;
          const list = byAgent.get(agentId) ?? [];
          list.push(match);
          byAgent.set(agentId, list);
        }
        if (byAgent.size === 0) byAgent.set('', []); // nothing matched: the counts still go in
        let counts: { evaluated: number; errors: readonly string[] } = found;
        for (const [agentId, matches] of byAgent) {
          detector.raise(agentId, matches, Date.now(), counts, true);
          counts = { evaluated: 0, errors: [] };
        }
        // The chunk's alerts are written: the mark may pass it, and no further.
        after = (rows[rows.length - 1] as (typeof rows)[number]).id;
        const rest = mark.pending(after + 1, through);
        mark.done(pending);
        pending = rest;
        done += rows.length;
      }
      if (this.stopping && after < through) {
        // The rest stays pending: the next start replays it.
        log.warn('matching of events stored before the last stop interrupted by the stop; the next start goes on', { event_count: done, through, next_after: after });
        return;
      }
      mark.done(pending);
      log.info('events stored before the last stop matched', { event_count: done });
    } catch (error) {
      // Stopping: the next start tries again. Otherwise the rest is given up (logged), so that the
      // mark is not held back for ever.
      log.error('events stored before the last stop could not all be matched', { event_count: done, given_up_after: after, through, err: error });
      if (!this.stopping) mark.done(pending);
    }
  }

  /**
   * Aborted when the server stopped on its own and cannot go on (a restart on a database put back
   * at its path that failed), with the error as its reason; the caller then calls stop().
   */
  get failed(): AbortSignal {
    return this.failure.signal;
  }

  /** Every STORE_FILES_CHECK_MS: a database file removed or replaced starts a restart on a copy put back (store-files.ts). */
  private checkStoreFiles(): void {
    if (this.restarting !== undefined || this.stopping) return;
    const lost = this.storeFiles?.lost();
    if (lost === undefined) return;
    this.log.error('a file of the event database was removed or replaced while the server ran: the server restarts on a copy of its database put back at the path (agents send again what was not acknowledged)', { code: 'HADES_ERR_STORE_LOST', file: lost });
    this.restarting = this.restartOnLostStore().finally(() => {
      this.restarting = undefined;
    });
  }

  private async restartOnLostStore(): Promise<void> {
    try {
      await this.stopParts(true);
      if (this.closed) return;
      await this.startParts();
      this.log.info('the server runs again on its database put back at its path', { file: this.storeFiles?.file });
    } catch (error) {
      const failure = toHadesError(error);
      this.log.error('the server could not start again after its database was lost; it stops', { err: failure });
      this.failure.abort(failure);
    }
  }

  /**
   * Before the database closes in a restart: its content copied beside its path (StoreFiles), tried
   * again every STORE_COPY_RETRY_MS while it fails (the only copy of what was stored and
   * acknowledged is the open file) until stop().
   */
  private async copyLostStore(): Promise<{ copy?: string; aside?: string } | undefined> {
    const files = this.storeFiles;
    const db = this.db;
    if (files === undefined || db === undefined) return undefined;
    for (;;) {
      try {
        return files.saveCopy(db);
      } catch (error) {
        if (this.closed) {
          this.log.error('the event database lost from its path could not be copied back before the server stopped: the events it held are lost with this process', { err: error });
          return undefined;
        }
        this.log.error(`the event database lost from its path could not be copied back; tried again in ${STORE_COPY_RETRY_MS / 1000} s (the agents keep their events meanwhile)`, { err: error });
        await sleep(STORE_COPY_RETRY_MS, undefined, { signal: this.closing.signal }).catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    await this.restarting;
    // Lost since the last check (`rm hades.db && systemctl restart`), or by a restart that failed
    // before its copy: put back now, or what the file holds goes with this process.
    const lost = this.storeFiles?.lost();
    if (lost !== undefined) this.log.error('a file of the event database was removed or replaced while the server ran: its content is put back at the path before the server stops', { code: 'HADES_ERR_STORE_LOST', file: lost });
    await this.stopParts(lost !== undefined);
    this.pki = undefined;
    this.log.close();
  }

  /** Every part stopped, in reverse; with `restore`, the database's content is put back at its path before it opens again. */
  private async stopParts(restore: boolean): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.detector?.close();
    await this.api?.close();
    this.api = undefined;
    // The gateway finishes the batches it began; then their detections end, before the worker closes.
    await this.gateway?.close();
    this.gateway = undefined;
    await Promise.all([...this.detections]);
    await this.replaying;
    this.replaying = undefined;
    await this.ingest?.close();
    this.ingest = undefined;
    // After the gateway: no new alert can come; what is queued gets a few seconds to leave.
    await this.outputs?.close();
    this.outputs = undefined;
    await this.cmdb?.stop();
    await this.archiving;
    this.archiving = undefined;
    await this.archive?.close();
    this.archive = undefined;
    this.mark?.close();
    this.mark = undefined;
    const stored = this.db !== undefined;
    const copy = restore ? await this.copyLostStore() : undefined;
    this.db?.close();
    this.db = undefined;
    if (copy?.copy !== undefined && this.storeFiles !== undefined) {
      this.storeFiles.placeBack(copy.copy);
      this.log.warn('the event database was put back at its path', { file: this.storeFiles.file, ...(copy.aside === undefined ? {} : { replacement_moved_to: copy.aside }) });
    } else if (copy?.aside !== undefined) {
      this.log.warn('files put beside the event database by another were moved aside', { file: this.storeFiles?.file, moved_to: copy.aside });
    }
    this.storeFiles = undefined;
    this.lock?.release();
    this.lock = undefined;
    if (stored) this.log.info(restore && !this.closed ? 'server stopped for a restart' : 'server stopped');
  }
}

export function writeSecret(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
}
