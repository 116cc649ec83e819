#!/usr/bin/env node
// Entry point of the `fuse-studio` command: runs the CLI bundle, dist/cli/main.js. `npm install`
// builds it (the `prepare` script runs `npm run build:cli`). In a checkout, a bundle that is missing,
// or older than one of the files it was built from (dist/cli/inputs.json: after a `git pull` or an
// edit), is rebuilt first, one process at a time, so the command never runs stale code.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bundle = join(root, 'dist/cli/main.js');
const inputsFile = join(root, 'dist/cli/inputs.json');

function fail(message) {
  process.stderr.write(`fuse-studio: ${message}\n`);
  process.exit(1);
}

/** Why the bundle has to be built, or null when it is up to date. */
function staleness() {
  // An installed package has no sources: its bundle is what there is.
  if (!existsSync(join(root, 'src')) && existsSync(bundle)) return null;
  if (!existsSync(bundle)) return 'dist/cli/main.js is missing';
  let inputs;
  try {
    inputs = JSON.parse(readFileSync(inputsFile, 'utf8'));
  } catch {
    return 'dist/cli/inputs.json (what the CLI was built from) is missing';
  }
  const built = statSync(bundle).mtimeMs;
  for (const file of inputs) {
    let changed;
    try {
      changed = statSync(join(root, file)).mtimeMs;
    } catch {
      return `${file}, which the CLI was built from, is gone`;
    }
    if (changed > built) return `${file} changed since the CLI was built`;
  }
  return null;
}

function viteBin() {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin/vite.js');
  } catch {
    return null;
  }
}

function build(reason) {
  const vite = viteBin();
  if (!vite) fail(`${reason}, and vite (a devDependency) is not installed to build it: run \`npm install\` in ${root}`);
  process.stderr.write(`fuse-studio: ${reason}; building it (npm run build:cli)…\n`);
  // Vite's own output goes to stderr: stdout is the command's (JSON, generated text).
  const r = spawnSync(process.execPath, [vite, 'build', '--config', 'vite.cli.config.ts', '--logLevel', 'warn'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) fail(`building the CLI failed (above); \`npm run build:cli\` in ${root} runs the same build`);
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

/** Runs `fn` holding a lock on this checkout's build, waiting for another process's build to end. */
function withBuildLock(fn) {
  const lock = join(tmpdir(), `fuse-studio-build-${createHash('sha256').update(root).digest('hex').slice(0, 16)}.lock`);
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let owner;
    try {
      owner = Number(readFileSync(lock, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    // A lock whose process is gone (killed mid-build) is taken over; an empty one is being written.
    if (owner > 0 && !alive(owner)) {
      try {
        unlinkSync(lock);
      } catch {
        // another process took it over first
      }
      continue;
    }
    if (Date.now() > deadline) fail(`waited 5 minutes for another build of the CLI (process ${owner}, lock ${lock})`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
  try {
    fn();
  } finally {
    unlinkSync(lock);
  }
}

if (staleness() !== null) {
  withBuildLock(() => {
    // Another process may have built it while this one waited.
    const reason = staleness();
    if (reason !== null) build(reason);
  });
}
await import(pathToFileURL(bundle).href);
