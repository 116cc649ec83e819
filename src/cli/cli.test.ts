// The built `fuse-studio` command as a newcomer runs it (node bin/fuse-studio.js, child processes):
// help from the commands' declarations, usage mistakes (exit 2, the nearest option named), GPU
// commands whose output carries none of the driver's own messages unless --verbose, and the entry
// point building a missing or stale bundle by itself.
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, GENERATE_OPTIONS } from './commands';
import { VERBOSE_HELP } from './program';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Other people's edits in a shared checkout can make the bundle stale between two runs; the entry
// point then says it rebuilds, which is not what these tests look at.
const REBUILD = /^fuse-studio: .*; building it \(npm run build:cli\)…\n/;
const cli = async (...args: string[]) => {
  const r = await run(join(ROOT, 'bin/fuse-studio.js'), args);
  return { ...r, stderr: r.stderr.replace(REBUILD, '') };
};
const oneLine = (s: string) => s.replace(/\s+/g, ' ');

beforeAll(async () => {
  // Builds dist/cli if it is missing or stale, so the timed tests below do not.
  const r = await cli('--version');
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

describe('fuse-studio --help', () => {
  it('lists every command, and each command its options, from the declarations', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    expect(top.stderr).toBe('');
    for (const c of COMMANDS) expect(oneLine(top.stdout), c.name).toContain(`${c.name}`);
    for (const c of COMMANDS) expect(oneLine(top.stdout), c.name).toContain(oneLine(c.summary));
    expect(top.stdout).toContain('--verbose');

    const gen = await cli('generate', '--help');
    expect(gen.code).toBe(0);
    expect(gen.stdout).toMatch(/^Usage: fuse-studio generate --model <DIR\|URL\|REPO\|PRESET> \[options\]/);
    for (const [name, o] of Object.entries(GENERATE_OPTIONS)) {
      const flags = 'value' in o ? `--${name} <${o.value}>` : `--${name}`;
      expect(gen.stdout, name).toContain(flags);
      expect(oneLine(gen.stdout), name).toContain(oneLine(o.help));
    }
    expect(oneLine(gen.stdout)).toContain(oneLine(VERBOSE_HELP));

    // A group's subcommands, and `help COMMAND`.
    const exp = await cli('export', '--help');
    expect(exp.stdout).toMatch(/merged \[options\]/);
    expect(exp.stdout).toMatch(/recipe \[options\]/);
    const help = await cli('help', 'train');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: fuse-studio train <stage> --model <DIR\|URL\|REPO\|PRESET> --data <FILE.jsonl> --out <ADAPTER_DIR> \[options\]/);
  });

  it('keeps the command modules out of the bundle entry: a command loads its dependencies only when it runs', async () => {
    // The entry chunk and what it imports statically must not reach the GPU addon or the pipeline's libraries.
    const dir = join(ROOT, 'dist/cli');
    const seen = new Set<string>();
    const external = new Set<string>();
    const visit = async (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = await readFile(join(dir, file), 'utf8');
      for (const m of text.matchAll(/^import\s(?:[^'"]*?\sfrom\s)?["']([^"']+)["'];?$/gm)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) await visit(join(file, '..', spec));
        else external.add(spec);
      }
    };
    await visit('main.js');
    expect([...external].filter((s) => !s.startsWith('node:')).sort()).toEqual(['commander']);
  });
});

describe('usage mistakes: exit 2, on stderr, naming what is wrong', () => {
  it('an unknown option gives the nearest valid name', async () => {
    const r = await cli('generate', '--model', 'demo', '--prompt', 'hi', '--max-new-token', '5');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("error: unknown option '--max-new-token'\n(Did you mean --max-new-tokens?)");
    expect(r.stderr).toContain('(see: fuse-studio generate --help)');

    const cmd = await cli('genrate', '--model', 'demo');
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("error: unknown command 'genrate'\n(Did you mean generate?)");
  });

  it('a missing required option or argument is named', async () => {
    const r = await cli('generate', '--prompt', 'hi');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: required option '--model <DIR|URL|REPO|PRESET>' not specified");

    const t = await cli('train', 'sft', '--model', 'demo', '--out', 'x');
    expect(t.code).toBe(2);
    expect(t.stderr).toContain("error: required option '--data <FILE.jsonl>' not specified");
    const stage = await cli('train', 'rl', '--model', 'demo', '--data', 'd.jsonl', '--out', 'x');
    expect(stage.code).toBe(2);
    expect(stage.stderr).toContain("error: command-argument value 'rl' is invalid for argument 'stage'. Allowed choices are sft, dpo.");

    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^Usage: fuse-studio <command> \[options\]/);
  });

  it("a command's own check of its values is a usage mistake too", async () => {
    const r = await cli('plan', '--model', 'llama-3.2-1b', '--seq', 'long');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('fuse-studio: --seq: "long" is not an integer\n(see: fuse-studio plan --help)\n');
  });
});

describe('GPU commands and the driver', () => {
  // VK_LOADER_DEBUG=all makes the Vulkan loader print what it does to stderr from native code, as
  // Dawn prints "Warning: Vulkan shaderUniform*ArrayDynamicIndexing required." for a driver it
  // passes over: messages that are there on every machine, so --verbose can be checked as well.
  const env = { VK_LOADER_DEBUG: 'all' };

  it('print nothing of the driver unless --verbose', async () => {
    const r = await run(join(ROOT, 'bin/fuse-studio.js'), ['gpu'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.replace(REBUILD, '')).toBe('');
    const adapter = JSON.parse(r.stdout) as { description: string; limits: Record<string, number> };
    expect(adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);

    const info = await run(join(ROOT, 'bin/fuse-studio.js'), ['info'], env);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stderr.replace(REBUILD, '')).toBe('');
    expect(info.stdout).toContain(`adapter:      ${adapter.description}`);

    const verbose = await run(join(ROOT, 'bin/fuse-studio.js'), ['gpu', '--verbose'], env);
    expect(verbose.code).toBe(0);
    expect(JSON.parse(verbose.stdout)).toEqual(adapter);
    expect(verbose.stderr).toMatch(/Vulkan Loader/);
    // Before the command's name too.
    const before = await run(join(ROOT, 'bin/fuse-studio.js'), ['--verbose', 'gpu'], env);
    expect(before.stderr).toMatch(/Vulkan Loader/);
  });

  it("keep the command's own messages and exit code", async () => {
    const r = await cli('generate', '--model', join(tmpdir(), 'no-such-model-folder'), '--prompt', 'hi');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fuse-studio: .*no-such-model-folder.* is not a folder/);
    const usage = await cli('generate', '--model', 'demo');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('fuse-studio: generate: give exactly one of --prompt, --messages, --prompt-ids\n(see: fuse-studio generate --help)\n');
  });
});

describe('bin/fuse-studio.js in a checkout', () => {
  let dir = '';
  beforeAll(async () => {
    // A copy of what the CLI is built from, sharing this checkout's node_modules.
    dir = await mkdtemp(join(tmpdir(), 'fuse-cli-'));
    for (const f of ['bin', 'src', 'shaders', 'package.json', 'tsconfig.json', 'vite.cli.config.ts']) await cp(join(ROOT, f), join(dir, f), { recursive: true });
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('builds a missing bundle, rebuilds a stale one, and says so', async () => {
    const bin = join(dir, 'bin/fuse-studio.js');
    const first = await run(bin, ['--version']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toBe('fuse-studio: dist/cli/main.js is missing; building it (npm run build:cli)…\n');
    expect(first.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);

    const again = await run(bin, ['--version']);
    expect(again.stderr).toBe('');

    // An edit after the build: one source newer than the bundle, every other one older.
    const ago = (s: number) => new Date(Date.now() - s * 1000);
    for (const f of JSON.parse(await readFile(join(dir, 'dist/cli/inputs.json'), 'utf8')) as string[]) await utimes(join(dir, f), ago(120), ago(120));
    await utimes(join(dir, 'dist/cli/main.js'), ago(60), ago(60));
    await utimes(join(dir, 'src/cli/commands.ts'), ago(0), ago(0));
    const stale = await run(bin, ['plan', '--help']);
    expect(stale.code).toBe(0);
    expect(stale.stderr).toBe('fuse-studio: src/cli/commands.ts changed since the CLI was built; building it (npm run build:cli)…\n');
    expect(stale.stdout).toMatch(/^Usage: fuse-studio plan/);
  }, 120_000);

  it('says what to do when the bundle is missing and cannot be built', async () => {
    const bare = await mkdtemp(join(tmpdir(), 'fuse-cli-bare-'));
    try {
      await cp(join(dir, 'bin'), join(bare, 'bin'), { recursive: true });
      await cp(join(dir, 'src'), join(bare, 'src'), { recursive: true });
      await cp(join(dir, 'package.json'), join(bare, 'package.json'));
      await mkdir(join(bare, 'node_modules'));
      const r = await run(join(bare, 'bin/fuse-studio.js'), ['--help']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`fuse-studio: dist/cli/main.js is missing, and vite (a devDependency) is not installed to build it: run \`npm install\` in ${bare}\n`);
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });
});
