// A workshop's load on `fuse-studio classroom` (src/classroom/), on loopback: `students` simulated
// students at once, each downloading the demo model's folder through the mirror (every file, as the
// studio's Hub client does) and collecting `prompts` items through the source proxy (4 requests in
// flight per student, as the studio's default source concurrency), all against one upstream that
// answers after 20 ms. Bounded: 30 students, 20 items each, 60 s at most (then it fails).
//   classroom.mirror        MB/s served by the mirror while everyone downloads
//   classroom.proxy         proxy requests/s (answered) over the collection
//   classroom.proxy.p95     95th percentile of a proxy request's latency (ms)
// Before anything is reported: every student got every byte of every file, every request was
// answered, and the upstream was asked once per item. The students run in the bench's own process:
// one Node event loop serves and downloads the ~700 MB and makes the 600 requests, so the latency
// includes the clients' own work while the files stream; on a real network each laptop does its
// own share, so read it as an upper bound of what the server adds.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { folderMirrorModel } from '../src/classroom/mirror';
import { httpUpstream, type ProxySource } from '../src/classroom/proxy';
import { startClassroom } from '../src/classroom/server';
import { chatCompletion, lastUser, startMockServer } from '../src/data/test-server';
import { writeDemoModel } from '../src/model/demo-node';
import { result, type BenchContext, type Benchmark, type Result } from './harness';

export interface ClassroomLoad {
  students: number;
  prompts: number;
  /** The whole run must end within this (ms). */
  limitMs: number;
}

export interface ClassroomMeasure {
  mbPerSecond: number;
  requestsPerSecond: number;
  p95Ms: number;
  bytes: number;
  requests: number;
  upstreamCalls: number;
  modelBytes: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Runs the load once; throws if anything was not served in full or in time. */
export async function measureClassroom(load: ClassroomLoad): Promise<ClassroomMeasure> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-classroom-'));
  const upstream = await startMockServer((r) => ({ kind: 'json', body: chatCompletion(`answer to ${lastUser(r)}`), delayMs: 20 }));
  let classroom: Awaited<ReturnType<typeof startClassroom>> | null = null;
  try {
    await mkdir(join(dir, 'studio'));
    await writeFile(join(dir, 'studio', 'index.html'), '<!doctype html><title>Fuse Studio</title>');
    await writeDemoModel(join(dir, 'model'));
    const model = await folderMirrorModel(join(dir, 'model'), 'classroom/demo');
    const source: ProxySource = {
      id: 'src',
      name: 'Source',
      model: 'upstream',
      seed: 0,
      sampling: { temperature: 0.8, top_p: 0.95, max_tokens: 64, n: 1 },
      repetitionPenaltyKey: 'repetition_penalty',
      extraBody: {},
      upstream: httpUpstream({ baseURL: upstream.baseURL, apiKey: 'sk-bench-key-0000' }, { timeoutMs: 30_000 }),
      secrets: ['sk-bench-key-0000'],
      kind: 'remote',
    };
    classroom = await startClassroom({ studioDir: join(dir, 'studio'), models: [model], sources: [source], limits: { quota: 1e9, perMinute: 1e9 }, host: '127.0.0.1', port: 0 });
    const base = classroom.url;
    const deadline = AbortSignal.timeout(load.limitMs);
    const latencies: number[] = [];
    let downloadEnd = 0;
    let bytes = 0;
    let proxyStart = Infinity;
    let proxyEnd = 0;
    const t0 = performance.now();

    const oneStudent = async (i: number) => {
      const id = `bench-student-${String(i).padStart(4, '0')}`;
      const headers = { 'x-fuse-student': id };
      for (const f of model.files) {
        const res = await fetch(`${base}/${model.repo}/resolve/main/${f.name}`, { headers, signal: deadline });
        const n = (await res.arrayBuffer()).byteLength;
        if (res.status !== 200 || n !== f.size) throw new Error(`classroom bench: ${id} got ${n} of ${f.size} bytes of ${f.name} (HTTP ${res.status})`);
        bytes += n;
      }
      downloadEnd = Math.max(downloadEnd, performance.now());
      let next = 0;
      const worker = async () => {
        while (next < load.prompts) {
          const p = next++;
          const t = performance.now();
          proxyStart = Math.min(proxyStart, t);
          const res = await fetch(`${base}/classroom/sources/src/v1/chat/completions`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'Source', messages: [{ role: 'user', content: `prompt ${p}` }], temperature: 0.8, top_p: 0.95, max_tokens: 64, seed: 0 }),
            signal: deadline,
          });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`classroom bench: ${id}'s request ${p} answered HTTP ${res.status}`);
          const end = performance.now();
          latencies.push(end - t);
          proxyEnd = Math.max(proxyEnd, end);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    };
    await Promise.all(Array.from({ length: load.students }, (_, i) => oneStudent(i)));

    const stats = classroom.proxy.stats();
    if (stats.upstreamCalls !== load.prompts) throw new Error(`classroom bench: the upstream was asked ${stats.upstreamCalls} times for ${load.prompts} items`);
    if (bytes !== model.bytes * load.students) throw new Error(`classroom bench: ${bytes} bytes downloaded, expected ${model.bytes * load.students}`);
    return {
      mbPerSecond: bytes / 1e6 / ((downloadEnd - t0) / 1000),
      requestsPerSecond: latencies.length / ((proxyEnd - proxyStart) / 1000),
      p95Ms: percentile(latencies, 95),
      bytes,
      requests: latencies.length,
      upstreamCalls: stats.upstreamCalls,
      modelBytes: model.bytes,
    };
  } finally {
    await classroom?.close();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export const classroomBench: Benchmark = {
  name: 'classroom',
  description: 'fuse-studio classroom on loopback: 30 students downloading the demo model through the mirror and collecting 20 items each through the source proxy at once',
  async run(ctx: BenchContext): Promise<Result[]> {
    const load: ClassroomLoad = { students: 30, prompts: 20, limitMs: 60_000 };
    const m = await measureClassroom(load);
    ctx.log(`classroom: ${m.mbPerSecond.toFixed(1)} MB/s served, ${m.requestsPerSecond.toFixed(0)} proxy requests/s, p95 ${m.p95Ms.toFixed(1)} ms, ${m.upstreamCalls} upstream calls`);
    const shape = `${load.students} students × (demo model folder ${(m.modelBytes / 1e6).toFixed(1)} MB + ${load.prompts} items, 4 in flight each), upstream 20 ms, loopback`;
    return [
      result({ name: 'classroom.mirror', unit: 'MB/s', ours: m.mbPerSecond, shape: `${shape}; ${(m.bytes / 1e6).toFixed(0)} MB served` }),
      result({ name: 'classroom.proxy', unit: 'requests/s', ours: m.requestsPerSecond, shape: `${shape}; ${m.requests} requests, ${m.upstreamCalls} upstream calls` }),
      result({ name: 'classroom.proxy.p95', unit: 'ms', ours: m.p95Ms, shape: `${shape}; latency of one proxy request` }),
    ];
  },
};

