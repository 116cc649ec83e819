// Keeping the GPU driver's own messages out of the CLI's output.
//
// Dawn and the Vulkan loader print from native code straight to file descriptor 2, where Node cannot
// catch them: "Warning: Vulkan shaderUniform*ArrayDynamicIndexing required." each time Dawn passes
// over a Vulkan driver while choosing the adapter (lavapipe, on a machine where SwiftShader is used),
// loader warnings, and so on. None of it is ours to say. So a GPU command runs in a child process
// (runQuietly) whose fd 2 is a pipe this process drains, while the child's own stderr (process.stderr,
// console.error) is pointed at our real stderr, passed to it as fd 3 (adoptRealStderr). `--verbose`
// runs the command in this process instead, so everything shows. What the driver printed is shown
// after all if the child crashes (killed by a signal we did not send), since it may say why.
import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { constants } from 'node:os';
import { isatty, WriteStream } from 'node:tty';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';

/** Set in the child: the fd of the real stderr. */
const STDERR_FD_ENV = 'FUSE_STUDIO_STDERR_FD';
const REAL_STDERR_FD = 3;
/** How much of the driver's output is kept, to show if the child crashes. */
const KEEP_BYTES = 64 * 1024;

/** Signals passed on to the child (which is in its own session, so it gets each one once). */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

let isQuietChild = false;

/** Whether a command can be run by runQuietly: not from its child, and not on Windows (no fds to pass). */
export function canRunQuietly(): boolean {
  return process.platform !== 'win32' && !isQuietChild;
}

/** Writes each chunk to an fd at once (so nothing is lost at process.exit), retrying a full pipe. */
class FdWriter extends Writable {
  constructor(readonly fd: number) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (e?: Error | null) => void): void {
    try {
      writeAll(this.fd, chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }
}

function writeAll(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length; ) {
    try {
      off += writeSync(fd, data, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}

/**
 * In a child started by runQuietly: make process.stderr (and so console.error) the real stderr.
 * Call it before anything is printed. Does nothing in any other process.
 */
export function adoptRealStderr(): void {
  const fd = Number(process.env[STDERR_FD_ENV]);
  if (fd !== REAL_STDERR_FD) return;
  // Processes this one starts (code sandboxes, …) have no such fd 3.
  delete process.env[STDERR_FD_ENV];
  isQuietChild = true;
  const stream = isatty(fd) ? new WriteStream(fd) : new FdWriter(fd);
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stream });
  // Node prints an uncaught error to fd 2 itself, which the parent drops: print it here.
  process.on('uncaughtException', (e) => {
    writeAll(fd, Buffer.from(`${inspect(e)}\n`));
    process.exit(1);
  });
  // The parent passes signals on; if it is killed outright (SIGKILL), stop as on SIGTERM.
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, 1000).unref();
}

/**
 * Runs `argv` (this CLI again) with its native stderr set aside; resolves to its exit code. A signal
 * that stopped it is raised again here, so callers see what they would have seen.
 */
export function runQuietly(argv: readonly string[]): Promise<number> {
  const child = spawn(argv[0]!, argv.slice(1), {
    // stdin: a terminal stays with us (a process outside the terminal's session must not read it).
    stdio: [process.stdin.isTTY ? 'ignore' : 'inherit', 'inherit', 'pipe', 2],
    env: { ...process.env, [STDERR_FD_ENV]: String(REAL_STDERR_FD) },
    // Its own session: a terminal's Ctrl-C reaches only us, and we pass it on exactly once.
    detached: true,
  });
  let kept: Buffer[] = [];
  let keptBytes = 0;
  child.stderr!.on('data', (d: Buffer) => {
    kept.push(d);
    keptBytes += d.length;
    while (keptBytes > KEEP_BYTES && kept.length > 1) keptBytes -= kept.shift()!.length;
  });
  const sent = new Set<NodeJS.Signals>();
  const forward = (signal: NodeJS.Signals) => {
    sent.add(signal);
    child.kill(signal);
  };
  // Ctrl-Z: stop the child with us, and wake it with us.
  const suspend = () => {
    child.kill('SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  };
  const resume = () => void child.kill('SIGCONT');
  for (const s of FORWARDED) process.on(s, forward);
  process.on('SIGTSTP', suspend);
  process.on('SIGCONT', resume);
  const cleanup = () => {
    for (const s of FORWARDED) process.off(s, forward);
    process.off('SIGTSTP', suspend);
    process.off('SIGCONT', resume);
  };
  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      cleanup();
      reject(e);
    });
    child.on('close', (code, signal) => {
      cleanup();
      if (signal === null) return resolve(code ?? 1);
      if (!sent.has(signal)) {
        const driver = Buffer.concat(kept).toString('utf8').trim();
        kept = [];
        process.stderr.write(
          `fuse-studio: the command was killed by ${signal}` +
            (driver ? `; what the GPU driver printed before:\n${driver}\n` : ' (the GPU driver printed nothing; --verbose runs it in this process)\n'),
        );
      } else {
        process.kill(process.pid, signal);
      }
      resolve(128 + (constants.signals[signal] ?? 0));
    });
  });
}
