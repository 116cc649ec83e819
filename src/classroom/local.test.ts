// A local source of the classroom on this machine's GPU (SwiftShader here): the demo model behind the
// serve engine, in process, through the proxy. Two students asking the same items make the model
// generate each once; the studio's own client gets the answers.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatComplete, makeSource } from '../data/sources';
import { writeDemoModel } from '../model/demo-node';
import { classroomSources } from './config';
import { loadLocalSource, type LoadedLocalSource } from './local';
import type { Upstream } from './proxy';
import { startClassroom, type Classroom } from './server';

let dir = '';
let classroom: Classroom;
let loaded: LoadedLocalSource;
let generations = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'classroom-local-'));
  await writeDemoModel(join(dir, 'demo'));
  await mkdir(join(dir, 'studio'));
  await writeFile(join(dir, 'studio', 'index.html'), '<!doctype html>');
  const sources = await classroomSources([{ name: 'Demo on GPU', local: true, model: join(dir, 'demo'), n: 2, max_tokens: 3, seed: 7 }], { file: 'sources.json' }, {
    loadLocal: async (s) => {
      loaded = await loadLocalSource(s, { dateString: '26 Jul 2024' });
      const counted: Upstream = { chat: (body, signal) => (generations++, loaded.upstream.chat(body, signal)) };
      return { upstream: counted, modelId: loaded.modelId };
    },
  });
  expect(sources[0]).toMatchObject({ id: 'Demo-on-GPU', kind: 'local', seed: 7, sampling: { n: 2, max_tokens: 3 } });
  classroom = await startClassroom({ studioDir: join(dir, 'studio'), models: [], sources, limits: { quota: 100, perMinute: 100 }, host: '127.0.0.1', port: 0 });
}, 120_000);

afterAll(async () => {
  await classroom?.close();
  await loaded?.release();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('classroom local source', () => {
  it('generates each item once for the class, answered through the studio client', async () => {
    const source = (student: string) =>
      makeSource({ name: 'Demo on GPU', baseURL: `${classroom.url}/classroom/sources/Demo-on-GPU/v1`, model: 'Demo on GPU', headers: { 'X-Fuse-Student': student }, seed: 7, max_tokens: 3, retry: { maxAttempts: 1 } });
    const messages = [{ role: 'user' as const, content: 'Name a colour.' }];
    const a = await Promise.all([0, 1].map((i) => chatComplete(source('student-aaaaaaaa'), messages, { sampleIndex: i })));
    const b = await Promise.all([0, 1].map((i) => chatComplete(source('student-bbbbbbbb'), messages, { sampleIndex: i })));
    expect(generations).toBe(2);
    expect(b.map((r) => r.content)).toEqual(a.map((r) => r.content));
    for (const r of a) {
      expect(r.usage?.completion_tokens).toBeGreaterThan(0);
      expect(r.usage!.completion_tokens).toBeLessThanOrEqual(3);
    }
    expect(classroom.proxy.stats()).toMatchObject({ upstreamCalls: 2, cacheHits: 2 });
  }, 120_000);
});
