// fuse-studio classroom: the instructor's machine serves a workshop — the built studio, a Hub-compatible
// mirror of the models, a keyed proxy to the sources with a shared cache and per-student quotas, the
// class recipe and a results board (src/classroom/). Ctrl-C or SIGTERM stops it (exit 0).
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { classroomJudge, classroomSources } from '../../classroom/config';
import { prepareMirrorModel, type MirrorModel } from '../../classroom/mirror';
import type { ProxySource } from '../../classroom/proxy';
import { startClassroom } from '../../classroom/server';
import type { LocalSource } from '../../data/local-source';
import { parseJsonText } from '../../data/pipeline-config';
import type { CLASSROOM_OPTIONS } from '../commands';
import { intOption, UsageError, type Parsed } from './args';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** dist/studio beside dist/cli (this code runs from a chunk somewhere under dist/cli), else ./dist/studio. */
function defaultStudioDir(): string {
  for (let d = dirname(fileURLToPath(import.meta.url)), i = 0; i < 4; d = dirname(d), i++) {
    for (const c of [join(d, 'studio'), join(d, 'dist', 'studio')]) if (existsSync(join(c, 'index.html'))) return c;
  }
  return resolve('dist', 'studio');
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${file}: cannot read it (${(e as Error).message})`);
  }
  return parseJsonText(text, file);
}

export async function run({ values: v }: Parsed<typeof CLASSROOM_OPTIONS>): Promise<number> {
  const port = intOption('port', v.port) ?? 8080;
  if (port < 0 || port > 65535) throw new UsageError(`--port: ${port} is not a port`);
  const quota = intOption('quota', v.quota) ?? 500;
  const perMinute = intOption('per-minute', v['per-minute']) ?? 120;
  if (quota < 0) throw new UsageError(`--quota: must be ≥ 0, got ${quota}`);
  if (perMinute < 1) throw new UsageError(`--per-minute: must be ≥ 1, got ${perMinute}`);
  const maxBody = intOption('max-body', v['max-body']);
  if (maxBody !== undefined && maxBody < 1024) throw new UsageError(`--max-body: must be ≥ 1024 bytes, got ${maxBody}`);
  const host = v.host ?? '127.0.0.1';
  const specs = v.model.split(',').map((s) => s.trim()).filter(Boolean);
  if (!specs.length) throw new UsageError('--model: give at least one model folder or Hub repo');

  const models: MirrorModel[] = [];
  for (const spec of specs) {
    const m = await prepareMirrorModel(spec, { onProgress: (line) => console.error(`classroom: ${line}`) });
    console.error(`classroom: mirroring ${m.repo} (${m.files.length} files, ${(m.bytes / 1e6).toFixed(1)} MB) from ${m.dir}`);
    models.push(m);
  }

  // Local sources load on this GPU once and answer every student (the serve engine, in process).
  const releases: (() => Promise<void>)[] = [];
  const loadLocal = async (s: LocalSource) => {
    const { loadLocalSource } = await import('../../classroom/local');
    console.error(`classroom: loading local source ${s.name} (${s.model}) on this GPU`);
    const loaded = await loadLocalSource(s);
    releases.push(loaded.release);
    return loaded;
  };

  let sources: ProxySource[] = [];
  let judge: { sourceId: string; rubric?: string } | null = null;
  try {
    if (v.sources) sources = await classroomSources(await readJson(v.sources), { file: v.sources, env: process.env }, { loadLocal });
    if (v.judge) {
      const j = classroomJudge(await readJson(v.judge), { file: v.judge, env: process.env }, sources);
      sources.push(j.source);
      judge = { sourceId: j.source.id, ...(j.rubric ? { rubric: j.rubric } : {}) };
    }
    const recipe = v.recipe ? new Uint8Array(await readFile(v.recipe).catch((e: Error) => Promise.reject(new UsageError(`--recipe ${v.recipe}: ${e.message}`)))) : null;
    if (!LOOPBACK.has(host)) console.error(`classroom: listening on ${host}: anyone on this network can open the studio and use the sources within the quotas`);

    const classroom = await startClassroom({
      studioDir: v.studio ?? defaultStudioDir(),
      models,
      sources,
      judge,
      recipe,
      limits: { quota, perMinute },
      host,
      port,
      ...(maxBody !== undefined ? { maxBodyBytes: maxBody } : {}),
      origins: v.origin ? v.origin.split(',').map((s) => s.trim()).filter(Boolean) : [],
      ...(v.board ? { boardFile: v.board } : {}),
    });
    // On all interfaces: name the addresses students can type (this machine's IPv4 ones on the room's network).
    const lan = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => `http://${a!.address}:${classroom.port}`);
    const address = host === '0.0.0.0' || host === '::' ? (lan[0] ?? `http://<this machine's address>:${classroom.port}`) : classroom.url;
    if ((host === '0.0.0.0' || host === '::') && lan.length > 1) console.log(`this machine's addresses: ${lan.join(', ')}`);
    console.log(`classroom at ${classroom.url} — students open ${address}; the board is ${address}/board`);
    console.log(`admin token: ${classroom.adminToken} (board reset, quotas, export; keep it to yourself)`);
    for (const s of sources) console.log(`  source ${s.name}: ${address}/classroom/sources/${s.id}/v1 (${s.kind === 'local' ? 'on this GPU' : 'upstream, key kept here'})`);
    console.log(`  quota: ${quota} requests per student, ${perMinute} a minute; recipe: ${address}/classroom/recipe.zip`);
    await new Promise<void>((done) => {
      const stop = (signal: string) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        console.error(`classroom: ${signal}, shutting down (send it again to force)`);
        void classroom.close().then(done);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  } finally {
    for (const r of releases) await r();
  }
  return 0;
}

