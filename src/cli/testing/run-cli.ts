// Tests run the CLI from source in a child process (vite-node), as a user would run it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const VITE_NODE = join(ROOT, 'node_modules/vite-node/dist/cli.mjs');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `fuse-studio …args` from source; killed after `timeoutMs`. */
export function runCli(args: readonly string[], o: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITE_NODE, 'src/cli/main.ts', '--', ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
