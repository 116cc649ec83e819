// The command-line parser, built from the declarations in commands.ts with commander: usage lines,
// `--help` of the program and of each command, "Did you mean" suggestions for unknown options and
// commands, required options and argument choices all come from there.
import { Argument, Command, CommanderError, Option } from 'commander';
import { version } from '../../package.json';
import { COMMANDS } from './commands';
import { UsageError, type CommandGroup, type CommandSpec, type OptionSpecs, type Parsed } from './commands/args';

/** The one option every command takes (before or after the command's name). */
export const VERBOSE_HELP = "show the GPU driver's own messages (Dawn, Vulkan) on stderr";

/** What a parsed command line asks for: the program calls it with the command and its values. */
/** `path`: the command's words after `fuse-studio` ("generate", "export merged"). */
export type Dispatch = (command: CommandSpec, parsed: Parsed<OptionSpecs>, how: { verbose: boolean; path: string }) => Promise<number>;

interface ProgramOptions {
  /** Where help and errors go (default: stdout and stderr). */
  output?: { writeOut(s: string): void; writeErr(s: string): void };
}

const isGroup = (c: CommandSpec | CommandGroup): c is CommandGroup => 'commands' in c;

function optionFlags(name: string, spec: OptionSpecs[string]): string {
  const long = `--${name}${spec.type === 'string' ? ` <${spec.value ?? 'VALUE'}>` : ''}`;
  return spec.short ? `-${spec.short}, ${long}` : long;
}

/**
 * The `fuse-studio` program. Each command's action collects its values under their declared
 * (long) names and hands them to `dispatch`; `result()` is what dispatch returned. Parse errors
 * throw a CommanderError (exitOverride) after printing their message.
 */
export function createProgram(dispatch: Dispatch, options: ProgramOptions = {}): { program: Command; result(): number | undefined } {
  let result: number | undefined;
  const program = new Command('fuse-studio');
  program
    .usage('<command> [options]')
    .description(
      'Fuse Studio from the command line: the same engine, data pipeline and training as the studio, ' +
        'on the WebGPU of Node (Dawn). `fuse-studio COMMAND --help` lists what a command takes.',
    )
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .helpCommand('help [command]', 'print the help of a command')
    .option('--verbose', VERBOSE_HELP)
    // Options after a command's name belong to it (each command takes --verbose and --help itself),
    // so a value such as `--prompt -h` is never read as the program's own option.
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(see: fuse-studio --help)');
  if (options.output) program.configureOutput(options.output);

  const addCommand = (parent: Command, spec: CommandSpec, path: string) => {
    const cmd = parent.command(spec.name).summary(spec.summary).description(spec.description);
    cmd.helpOption('-h, --help', 'print this help');
    cmd.showHelpAfterError(`(see: fuse-studio ${path} --help)`);
    for (const a of spec.arguments ?? []) {
      const arg = new Argument(`<${a.name}>`, a.help);
      if (a.choices) arg.choices(a.choices);
      cmd.addArgument(arg);
    }
    const attributes = new Map<string, string>();
    const required: string[] = [];
    for (const [name, o] of Object.entries(spec.options)) {
      const opt = new Option(optionFlags(name, o), `${o.help}${o.multiple ? ' (repeatable)' : ''}${o.required ? ' (required)' : ''}`);
      if (o.multiple) opt.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
      if (o.required) {
        opt.makeOptionMandatory();
        required.push(optionFlags(name, o));
      }
      cmd.addOption(opt);
      attributes.set(name, opt.attributeName());
    }
    cmd.usage([...(spec.arguments ?? []).map((a) => `<${a.name}>`), ...required, '[options]'].join(' '));
    cmd.addOption(new Option('--verbose', VERBOSE_HELP));
    cmd.action(async () => {
      const values: Record<string, string | string[] | boolean | undefined> = {};
      for (const [name, attribute] of attributes) {
        const v = cmd.getOptionValue(attribute) as string | string[] | boolean | undefined;
        if (v !== undefined) values[name] = v;
      }
      const verbose = Boolean(cmd.getOptionValue('verbose') ?? program.getOptionValue('verbose'));
      result = await dispatch(spec, { values, positionals: cmd.processedArgs as string[] } as Parsed<OptionSpecs>, { verbose, path });
    });
  };

  for (const c of COMMANDS) {
    if (!isGroup(c)) {
      addCommand(program, c, c.name);
      continue;
    }
    const group = program
      .command(c.name)
      .summary(c.summary)
      .description(c.description)
      .usage('<command> [options]')
      .helpOption('-h, --help', 'print this help')
      .helpCommand(false)
      .enablePositionalOptions()
      .showHelpAfterError(`(see: fuse-studio ${c.name} --help)`);
    for (const sub of c.commands) addCommand(group, sub, `${c.name} ${sub.name}`);
  }
  return { program, result: () => result };
}

/** A CommanderError that is not a mistake: help or the version was asked for (commander exits 0 then). */
export function isHelpOrVersion(e: CommanderError): boolean {
  return e.exitCode === 0;
}

/**
 * Parses a command line as the CLI does and runs the command in this process (no driver-message
 * filtering): for callers such as tests. A usage mistake throws a UsageError, as the commands do.
 */
export async function runCommand(argv: string[]): Promise<number> {
  let message = '';
  const { program, result } = createProgram((spec, parsed) => spec.run(parsed), {
    output: { writeOut: () => {}, writeErr: (s) => void (message ||= s) },
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError && !isHelpOrVersion(e)) throw new UsageError(e.message.replace(/^error: /, ''));
    throw e;
  }
  const code = result();
  if (code === undefined) throw new UsageError(message.trim() || `nothing to run in: ${argv.join(' ')}`);
  return code;
}
