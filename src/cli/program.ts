import { Command, CommanderError } from 'commander';
import { HadesError, toHadesError, type ErrorCode } from '../common/errors.js';
import { exitStatus, version, type CliContext } from './context.js';
import { shown } from './terminal.js';
import { commands, groups, type CommandSpec } from './registry.js';

/** Commander's error codes mapped to ours; help and version are not errors. */
const commanderCodes: Readonly<Record<string, ErrorCode>> = {
  'commander.unknownCommand': 'HADES_ERR_CLI_UNKNOWN_COMMAND',
  'commander.unknownOption': 'HADES_ERR_CLI_UNKNOWN_OPTION',
  'commander.missingArgument': 'HADES_ERR_CLI_MISSING_ARGUMENT',
  'commander.optionMissingArgument': 'HADES_ERR_CLI_MISSING_ARGUMENT',
  'commander.missingMandatoryOptionValue': 'HADES_ERR_CLI_MISSING_ARGUMENT',
  'commander.excessArguments': 'HADES_ERR_CLI_TOO_MANY_ARGUMENTS',
  'commander.invalidArgument': 'HADES_ERR_CLI_INVALID_ARGUMENT',
  'commander.conflictingOption': 'HADES_ERR_CLI_INVALID_ARGUMENT',
};

const notErrors = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/** Builds the command tree from the registry. Registering the same name twice is a bug. */
export function buildProgram(context: CliContext, onExit: (status: number) => void): Command {
  const program = new Command('hades')
    .description('Hades: host intrusion detection for Linux fleets')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand(false)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => context.stdout.write(s),
      writeErr: (s) => context.stderr.write(s),
      // Errors are printed once, in our one-line form, by runCli.
      outputError: () => undefined,
    });

  const byName = new Map<string, Command>([['', program]]);
  const nodeFor = (path: readonly string[]): Command => {
    const key = path.join(' ');
    const existing = byName.get(key);
    if (existing) return existing;
    const parent = nodeFor(path.slice(0, -1));
    const name = path.at(-1) ?? '';
    const node = parent.command(name).description(groups[key] ?? '').helpCommand(false);
    byName.set(key, node);
    return node;
  };

  const registered = new Set<string>();
  for (const spec of commands) {
    if (registered.has(spec.name)) throw new HadesError('HADES_ERR_INTERNAL', `command '${spec.name}' is registered twice`);
    registered.add(spec.name);
    const command = nodeFor(spec.name.split(' '));
    command.description(spec.run ? spec.summary : `[not yet available] ${spec.summary}`);
    spec.define?.(command);
    attachAction(command, spec, context, onExit);
  }
  // A group whose every subcommand is planned says so too.
  for (const [key, node] of byName) {
    if (key === '' || registered.has(key)) continue;
    const children = commands.filter((c) => c.name.startsWith(`${key} `));
    if (children.every((c) => !c.run)) node.description(`[not yet available] ${node.description()}`);
  }
  return program;
}

function attachAction(command: Command, spec: CommandSpec, context: CliContext, onExit: (status: number) => void): void {
  if (!spec.run) {
    command.allowUnknownOption(true).allowExcessArguments(true);
    command.action(() => {
      throw new HadesError('HADES_ERR_NOT_YET_AVAILABLE', `'hades ${spec.name}' is not yet available: it comes with ${spec.planned ?? 'a later version'}`);
    });
    return;
  }
  const run = spec.run;
  command.action(async (...received: unknown[]) => {
    // Commander passes the declared arguments, then the options object, then the command.
    // A variadic argument arrives as one array; an optional one left out as undefined.
    const args = received.slice(0, -2).flatMap((a) => (Array.isArray(a) ? a.map(String) : a === undefined ? [] : [String(a as string)]));
    // With globals: a parent that takes the same option (`agent --config` and `agent status
    // --config`) would otherwise keep it for itself.
    const options: Readonly<Record<string, unknown>> = (received.at(-1) as Command).optsWithGlobals();
    onExit(await run(context, args, options));
  });
}

/** Runs the CLI with argv (without `node` and the script) and resolves to the exit status. */
export async function runCli(argv: readonly string[], context: CliContext): Promise<number> {
  let status = exitStatus.ok;
  const program = buildProgram(context, (s) => {
    status = s;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return status;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (notErrors.has(error.code)) {
        if (error.exitCode === 0) return exitStatus.ok;
        // A group typed without a subcommand: commander printed its help; say what was missing.
        return report(context, new HadesError('HADES_ERR_CLI_MISSING_ARGUMENT', 'a subcommand is needed; the help above lists them'));
      }
      const code = commanderCodes[error.code] ?? 'HADES_ERR_CLI_INVALID_ARGUMENT';
      let message = error.message.replace(/^error:\s*/i, '').replace(/\n\((.*)\)\s*$/s, (_, hint: string) => ` (${hint.charAt(0).toLowerCase()}${hint.slice(1)})`);
      // `rules match --rules a.yaml events.ndjson`: an option of several values took the argument.
      const greedy = error.code === 'commander.missingArgument' ? variadicOptionGiven(program, argv) : undefined;
      if (greedy !== undefined) message += `; ${greedy} takes every value up to the next option: put the arguments before it, or end its values with --`;
      return report(context, new HadesError(code, message));
    }
    return report(context, toHadesError(error));
  }
}

/** The first option of several values (`--rules <path...>`) the arguments give to the command they name, or undefined. */
function variadicOptionGiven(program: Command, argv: readonly string[]): string | undefined {
  let command = program;
  for (const word of argv) {
    const sub = command.commands.find((c) => c.name() === word);
    if (sub !== undefined) {
      command = sub;
      continue;
    }
    const option = command.options.find((o) => o.variadic && (o.long === word || o.short === word));
    if (option !== undefined) return option.long ?? option.short;
  }
  return undefined;
}

function report(context: CliContext, error: HadesError): number {
  // A message may quote what a server or a host sent: one line, its control characters escaped.
  context.stderr.write(`hades: ${shown(error.toLine())}\n`);
  return exitStatus[error.kind];
}
