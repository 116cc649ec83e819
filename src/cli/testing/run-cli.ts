// Tests run the CLI from source in a child process (vite-node), as a user would run it.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const VITE_NODE = join(ROOT, 'node_modules/vite-node/dist/cli.mjs');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  /** Killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  /** Added to the environment (NO_COLOR is set). */
  env?: Record<string, string>;
  /** Sees the child as soon as it starts (to watch its output or kill it). */
  onStart?: (child: ChildProcess) => void;
}

/** `fuse-studio …args` from source; resolves when it exits. */
export function runCli(args: readonly string[], o: RunCliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITE_NODE, 'src/cli/main.ts', '--', ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    o.onStart?.(child);
  });
}
