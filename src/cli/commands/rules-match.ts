/**
 * `hades rules match EVENTS... [--rules PATH]... [--no-default-pack] [--json]`: runs captured
 * events (NDJSON: `hades events`, `hades search --json`, an agent's file output, the server's raw
 * archive, whose `.ndjson.gz` files are inflated on the way) through the rules, offline, as the
 * server's detection would: one line per match. Files are read in the order given, as one
 * stream (a shell's glob of an archive's partitions is in time order). For a rule writer, what
 * a new rule or an exception does to a real capture before it reaches the fleet; for an incident
 * responder, the rules run over events gathered before the rules that catch them existed.
 *
 * Correlation rules (sequences, thresholds) count in the events' own time (`@timestamp`), so a
 * capture replays as it happened, whatever its age. Lines that are not a JSON object are
 * reported on stderr with their number and skipped; the others are matched as they are (the
 * rules read only the fields they name). Reads the file (or standard input, `-`) line by line:
 * a capture of any size runs in bounded memory, apart from the correlation state, which is
 * bounded as on the server.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { HadesError } from '../../common/errors.js';
import { capProblems, formatProblem, loadRules, type Match, type RuleSet } from '../../rules/index.js';
import { readDefaultPack, readRuleFiles } from '../../runtime/rule-pack.js';
import { readField, readText } from '../../server/alerts/detector.js';
import { exitStatus, type CliContext } from '../context.js';
import { shown } from '../terminal.js';
import { boundedLines } from '../../runtime/bounded-lines.js';

/** Every this many events, the correlation groups whose window ended an hour before the newest event (in event time) are let go. */
const EXPIRE_EVERY_EVENTS = 10_000;
/** Bad lines reported one by one; the others are counted in the summary. */
const MAX_LINE_PROBLEMS = 20;
const MIB = 1024 * 1024;
/** The longest line read as an event: the server takes batches of at most 8 MiB; an event is a few KB. */
const MAX_LINE_BYTES = 16 * MIB;

/** One match as `--json` prints it: the alert the server would raise, without its triage. */
function matchDocument(m: Match, file: string, line: number): Record<string, unknown> {
  const e = m.event;
  const process = readField(e, 'process') as Record<string, unknown> | undefined;
  return {
    rule: { id: m.rule.id, title: m.rule.title, severity: m.severity, tags: m.tags, type: m.rule.type },
    message: m.output,
    '@timestamp': readField(e, '@timestamp'),
    file,
    line,
    event: { id: readField(e, 'event.id'), action: readField(e, 'event.action') },
    host: { name: readField(e, 'host.name') },
    ...(process === undefined ? {} : { process: { pid: process['pid'], entity_id: process['entity_id'], executable: process['executable'], command_line: process['command_line'] } }),
    ...(m.correlation === undefined ? {} : { correlation: { count: m.correlation.count, first: new Date(m.correlation.first).toISOString(), events: m.correlation.events } }),
  };
}

/** One match on a line, as `hades alerts list` prints an alert: time, severity, rule, host, where, message. */
function matchLine(m: Match, file: string, line: number): string {
  const e = m.event;
  const when = readText(e, '@timestamp') ?? '-';
  const host = readText(e, 'host.name') ?? '-';
  const count = m.correlation === undefined ? '' : ` (${m.correlation.count} events)`;
  return shown(`${when} ${m.severity.padEnd(8)} ${m.rule.id} ${host} ${file}:${line}${count}: ${m.output}`);
}

/** The lines' bytes of one source: standard input, a file, or a gzip file (`.gz`) inflated. */
async function openEvents(source: string): Promise<Readable> {
  if (source === '-') return process.stdin;
  const stream = createReadStream(source);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  }).catch((error: NodeJS.ErrnoException) => {
    throw new HadesError('HADES_ERR_EVENTS_READ', `cannot read the events file ${source}: ${error.code ?? error.message}`, { cause: error });
  });
  if (!source.endsWith('.gz')) return stream;
  const inflated = createGunzip();
  // A read error of the file ends the inflated stream with it (pipe alone would leave it open).
  stream.once('error', (error) => inflated.destroy(error));
  return stream.pipe(inflated);
}

export async function rulesMatch(context: CliContext, args: readonly string[], options: Readonly<Record<string, unknown>>): Promise<number> {
  const sources = args;
  if (sources.length === 0) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'give the events files (NDJSON, as hades events or hades search --json print them; .ndjson.gz as the raw archive keeps them), or - for standard input');
  if (sources.filter((s) => s === '-').length > 1) throw new HadesError('HADES_ERR_CLI_INVALID_ARGUMENT', 'standard input (-) can be read once');
  const paths = (options['rules'] as string[] | undefined) ?? [];
  const withPack = options['defaultPack'] !== false;
  if (!withPack && paths.length === 0) throw new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', '--no-default-pack needs rule files: give them with --rules PATH');
  const files = [...(withPack ? await readDefaultPack() : []), ...(paths.length > 0 ? await readRuleFiles(paths) : [])];
  const { ruleSet, problems } = loadRules(files, { samples: false });
  // What did not load is said first (rules test says more); the rest run.
  for (const p of capProblems(problems.filter((x) => x.severity === 'error'))) context.stderr.write(`${formatProblem(p)}\n`);
  const json = options['json'] === true;
  const totals: Totals = { events: 0, matches: 0, invalid: 0, noAction: 0, firstNoAction: '', bySeverity: {}, newest: 0, previous: 0, backwards: 0, forwards: 0 };
  for (const source of sources) {
    if (context.signal.aborted) break;
    await matchStream(context, await openEvents(source), ruleSet, json, source === '-' ? 'stdin' : source, totals);
  }
  const bySeverity = Object.entries(totals.bySeverity)
    .map(([severity, n]) => `${n} ${severity}`)
    .join(', ');
  // Sequences need their steps in order: a capture read newest first (as hades search prints) is said so.
  if (totals.backwards >= 2 && totals.backwards > 2 * totals.forwards) {
    context.stderr.write('hades: most events are older than the one before them (hades search prints newest first): sequences need the events oldest first; reverse the lines (| tac |)\n');
  }
  // Rules are chosen by the event's action: an event without one meets only those for any action.
  if (totals.noAction > 0) {
    context.stderr.write(
      `${shown(`hades: ${totals.noAction} event(s) without event.action (the first at ${totals.firstNoAction}): rules are chosen by the action, so only those written for any action ran on them`)}\n`,
    );
  }
  context.stderr.write(
    `${totals.events} event(s), ${totals.matches} match(es)${totals.matches > 0 ? ` (${bySeverity})` : ''} by ${ruleSet.rules.length} rule(s)${totals.invalid > 0 ? `; ${totals.invalid} line(s) not an event, skipped` : ''}\n`,
  );
  return exitStatus.ok;
}

interface Totals {
  events: number;
  matches: number;
  invalid: number;
  /** Events without a text `event.action`, and where the first was (file:line). */
  noAction: number;
  firstNoAction: string;
  readonly bySeverity: Record<string, number>;
  /** The newest @timestamp read so far (ms): the correlation state's clock. */
  newest: number;
  /** The last event's @timestamp, and how many events were older, and newer, than the one before. */
  previous: number;
  backwards: number;
  forwards: number;
}

/** Matches the events of one source, adding to `totals`. */
async function matchStream(context: CliContext, input: Readable, ruleSet: RuleSet, json: boolean, name: string, totals: Totals): Promise<void> {
  const lines = boundedLines(input, MAX_LINE_BYTES);
  // Ctrl-C ends the reading: the stream ends early, and what was read is summed up.
  const onAbort = () => input.destroy();
  context.signal.addEventListener('abort', onAbort, { once: true });
  let number = 0;
  try {
    for await (const line of lines) {
      number++;
      if (typeof line !== 'string') {
        invalidLine(context, totals, name, number, `a line of ${line.tooLong} bytes, longer than an event can be (${MAX_LINE_BYTES / MIB} MiB)`);
        continue;
      }
      if (line.trim() === '') continue;
      let event: unknown;
      try {
        event = JSON.parse(line);
      } catch (error) {
        invalidLine(context, totals, name, number, `not JSON (${(error as Error).message})`);
        continue;
      }
      if (typeof event !== 'object' || event === null || Array.isArray(event)) {
        invalidLine(context, totals, name, number, 'not a JSON object');
        continue;
      }
      totals.events++;
      const action = (event as { event?: { action?: unknown } }).event?.action;
      if (typeof action !== 'string' || action === '') {
        if (totals.noAction++ === 0) totals.firstNoAction = `${name}:${number}`;
      }
      const time = Date.parse(readText(event as Record<string, unknown>, '@timestamp') ?? '');
      if (Number.isFinite(time)) {
        if (totals.previous > 0 && time < totals.previous) totals.backwards++;
        else if (totals.previous > 0 && time > totals.previous) totals.forwards++;
        totals.previous = time;
        if (time > totals.newest) totals.newest = time;
      }
      for (const m of ruleSet.match(event as Record<string, unknown>)) {
        totals.matches++;
        totals.bySeverity[m.severity] = (totals.bySeverity[m.severity] ?? 0) + 1;
        context.stdout.write(`${json ? JSON.stringify(matchDocument(m, name, number)) : matchLine(m, name, number)}\n`);
      }
      if (totals.events % EXPIRE_EVERY_EVENTS === 0 && totals.newest > 0) ruleSet.expireIdle(totals.newest);
    }
  } catch (error) {
    if (error instanceof HadesError) throw error;
    if (context.signal.aborted) return;
    const e = error as NodeJS.ErrnoException;
    throw new HadesError('HADES_ERR_EVENTS_READ', `cannot read the events from ${name} after line ${number}: ${e.code ?? e.message}`, { cause: error });
  } finally {
    context.signal.removeEventListener('abort', onAbort);
    if (input !== process.stdin) input.destroy();
  }
}

function invalidLine(context: CliContext, totals: Totals, name: string, line: number, why: string): void {
  totals.invalid++;
  if (totals.invalid <= MAX_LINE_PROBLEMS) context.stderr.write(`${shown(`${name}:${line}: HADES_ERR_EVENT_INVALID: ${why}`)}\n`);
  else if (totals.invalid === MAX_LINE_PROBLEMS + 1) context.stderr.write(`(more lines that are not events are counted, not listed)\n`);
}
