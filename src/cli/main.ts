// fuse-studio: the command-line face of the studio's modules (Node + Dawn). A thin entry point:
// commands.ts declares the commands, program.ts parses the command line from those declarations,
// and a GPU command runs in a child process that keeps the GPU driver's own messages out of the
// output unless --verbose (quiet.ts). Exit codes: 0 done, 1 failed, 2 a usage mistake.
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { UsageError } from './commands/args';
import { createProgram, isHelpOrVersion } from './program';
import { canRunQuietly, runQuietly, adoptRealStderr } from './quiet';

// In the child of runQuietly, before anything is printed.
adoptRealStderr();

/**
 * The command line that runs this CLI again: the bundle (dist/cli/main.js) as it is; the source
 * (vite-node src/cli/main.ts, as the tests run it) through vite-node again.
 */
function selfArgv(argv: string[]): string[] {
  const self = fileURLToPath(import.meta.url);
  const runner = self.endsWith('.ts') ? [process.argv[1]!, self, '--'] : [self];
  return [process.execPath, ...process.execArgv, ...runner, ...argv];
}

async function main(argv: string[]): Promise<number> {
  const { program, result } = createProgram(async (command, parsed, { verbose, path }) => {
    if (command.gpu && !verbose && canRunQuietly()) return runQuietly(selfArgv(argv));
    try {
      return await command.run(parsed);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      console.error(`fuse-studio: ${e.message}\n(see: fuse-studio ${path} --help)`);
      return 2;
    }
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    // commander has printed the message (unknown option and its nearest name, missing option, …).
    if (e instanceof CommanderError) return isHelpOrVersion(e) ? 0 : 2;
    throw e;
  }
  return result() ?? 2;
}

// Top-level await: the commands are loaded lazily, and a runner that evaluates this module
// (vite-node in the tests) must not consider it finished before the command is.
try {
  process.exit(await main(process.argv.slice(2)));
} catch (e: unknown) {
  console.error(`fuse-studio: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
