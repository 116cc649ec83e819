// How a command declares its options (once: the parser, `--help` and the typed values the command
// receives all come from the declaration, see ../commands.ts and ../program.ts), and small helpers
// the commands share for reading them.

/** A usage mistake (bad or missing option): the CLI prints it with the command's usage, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** One option of a command. Values arrive as given (strings), so each command checks its own. */
export interface OptionSpec {
  /** 'string' takes a value (`--seed 3` or `--seed=3`); 'boolean' is a flag. */
  readonly type: 'string' | 'boolean';
  /** What the value is, for --help (`--model <DIR|URL>`); 'string' options only. */
  readonly value?: string;
  /** A one-letter alias (`-q`). */
  readonly short?: string;
  /** The parser refuses the command without it (naming it). */
  readonly required?: boolean;
  /** A 'string' option that may be given several times: the command receives the values as a list, in order. */
  readonly multiple?: boolean;
  /** One line for --help; say the default here when there is one. */
  readonly help: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The values a command receives, keyed by long option name: what node:util parseArgs would give. */
type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean' ? boolean : S['multiple'] extends true ? string[] : string;
export type Values<O extends OptionSpecs> = {
  -readonly [K in keyof O as O[K]['required'] extends true ? K : never]: ValueOf<O[K]>;
} & {
  -readonly [K in keyof O as O[K]['required'] extends true ? never : K]?: ValueOf<O[K]>;
};

/** What a command's `run` receives: its option values and its positional arguments. */
export interface Parsed<O extends OptionSpecs> {
  values: Values<O>;
  positionals: string[];
}

/** `--flag` as an integer, or undefined when absent. */
export function intOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n)) throw new UsageError(`--${flag}: "${value}" is not an integer`);
  return n;
}

/** `--flag` as a finite number, or undefined when absent. */
export function numberOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag}: "${value}" is not a number`);
  return n;
}

/** A positional argument (required, in order). */
export interface ArgumentSpec {
  readonly name: string;
  /** The values it may take; the parser refuses others, listing these. */
  readonly choices?: readonly string[];
  readonly help: string;
}

/** A command: everything the parser and `--help` need, and how to run it. */
export interface CommandSpec<O extends OptionSpecs = OptionSpecs> {
  readonly name: string;
  /** Its line in `fuse-studio --help`. */
  readonly summary: string;
  /** What `fuse-studio NAME --help` says under the usage line; the options list comes from `options`. */
  readonly description: string;
  readonly arguments?: readonly ArgumentSpec[];
  readonly options: O;
  /** It uses the WebGPU adapter: the GPU driver's own messages are kept out of its output (../quiet.ts). */
  readonly gpu?: boolean;
  /** Runs it. Import the command's module here, so that no other command loads what it needs. */
  run(parsed: Parsed<O>): Promise<number>;
}

/** A command with subcommands (`export merged`, `export recipe`). */
export interface CommandGroup {
  readonly name: string;
  readonly summary: string;
  readonly description: string;
  readonly commands: readonly CommandSpec[];
}

/** Declares a command, keeping its option names in the type `run` receives. */
export function command<const O extends OptionSpecs>(spec: CommandSpec<O>): CommandSpec {
  return spec;
}
