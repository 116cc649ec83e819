// The generated models the no-API-key specs use in place of downloads, on a file server: a tiny
// Llama 3 and a tiny Qwen3 (real tokenizers and chat templates) as sources, a tiny reward model
// as the judge, at `${files.base}/llama`, `/qwen` and `/rm`.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyRewardModel, type TinyRewardModel } from '../src/data/test-reward-model';
import { writeDemoModel } from '../src/model/demo-node';
import { isPlainName, startFileServer, type FileServer } from './file-server';

export interface LocalModels {
  dir: string;
  files: FileServer;
  rm: TinyRewardModel;
  close(): Promise<void>;
}

/** Writes the three models (source seeds `seed` and `seed + 1`) into a temporary folder and serves them. */
export async function serveLocalModels(seed: number): Promise<LocalModels> {
  const dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-local-'));
  await writeDemoModel(join(dir, 'llama'), { family: 'llama', seed });
  await writeDemoModel(join(dir, 'qwen'), { family: 'qwen3', seed: seed + 1 });
  const rmModel = await writeTinyRewardModel(join(dir, 'rm'), { scoreScale: 16, template: 'llama-3' });
  const files = await startFileServer((path) => {
    const m = /^\/(llama|qwen|rm)\/(.+)$/.exec(path);
    return m && isPlainName(m[2]!) ? readFile(join(dir, m[1]!, m[2]!)) : undefined;
  });
  return {
    dir,
    files,
    rm: rmModel,
    async close() {
      await files.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
