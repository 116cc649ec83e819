// Helpers shared by the e2e specs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type Page } from '@playwright/test';

/**
 * Collects page errors and console errors, except those matching `expected` (by default the 404
 * probes for optional model files, which Chromium logs as failed resources).
 */
export function watchErrors(page: Page, expected: RegExp | null = /404|Failed to load resource/): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expected && expected.test(m.text()))) errors.push(`console.error: ${m.text()}`);
  });
  return errors;
}

/** A full-page screenshot kept with the test's artifacts, and in docs/screenshots/ when UPDATE_SCREENSHOTS is set. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: test.info().outputPath(name), fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS) {
    await mkdir('docs/screenshots', { recursive: true });
    await page.screenshot({ path: `docs/screenshots/${name}`, fullPage: true });
  }
}

/**
 * Starts the built `fuse-studio serve` on a free port with `args` after `--model DIR`; resolves
 * once it listens, with its base URL (…/v1) and the child (stop it with kill('SIGTERM')).
 */
export async function startServe(modelDir: string, args: readonly string[] = []): Promise<{ url: string; child: ChildProcess }> {
  if (!existsSync('dist/cli/main.js')) throw new Error('dist/cli/main.js is missing: run `npm run build` before the e2e tests');
  const child = spawn(process.execPath, ['bin/fuse-studio.js', 'serve', '--model', modelDir, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fuse-studio serve did not start in 120 s:\n${log}`)), 120_000);
    const onData = (b: Buffer) => {
      log += b.toString();
      const m = /serving "[^"]+" at (http:\/\/\S+\/v1)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, child });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fuse-studio serve exited with ${code}:\n${log}`));
    });
  });
}

/** The data run's stored responses and scores (the page's IndexedDB), typed by the caller. */
export function readRun<R, S>(page: Page): Promise<{ responses: R[]; scores: S[] }> {
  return page.evaluate(async () => {
    const runId = localStorage.getItem('fuse-studio.dataRun');
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('fuse-studio-collect');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const all = (store: string) =>
      new Promise<unknown[]>((resolve, reject) => {
        const req = db.transaction(store, 'readonly').objectStore(store).index('runId').getAll(runId);
        req.onsuccess = () => resolve(req.result as unknown[]);
        req.onerror = () => reject(req.error);
      });
    const responses = await all('responses');
    const scores = await all('scores');
    db.close();
    return { responses, scores };
  }) as Promise<{ responses: R[]; scores: S[] }>;
}

/**
 * Raw rewards of `conversations` from `fuse-studio reward` (the engine on Node's Dawn; checked
 * against the float64 reference in src/cli/reward.test.ts), to compare with what the tab stored.
 */
export async function cliRewards(modelDir: string, conversations: readonly { role: string; content: string }[][], workDir: string): Promise<number[]> {
  const file = join(workDir, `reward-records-${Date.now()}.jsonl`);
  await writeFile(file, conversations.map((messages) => JSON.stringify({ messages })).join('\n') + '\n');
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['node_modules/vite-node/dist/cli.mjs', 'src/cli/main.ts', '--', 'reward', '--model', modelDir, '--data', file], (e, out, err) =>
      e ? reject(new Error(`${e.message}\n${err}`)) : resolve(out),
    ),
  );
  return stdout.trim().split('\n').map((l) => (JSON.parse(l) as { reward: number }).reward);
}
