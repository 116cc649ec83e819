// Node: write the built-in demo model folder to disk (see demo.ts for what it holds).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readLlama3TokenizerJson } from '../tokenizer/llama3-node';
import { readQwen3TokenizerSource } from '../tokenizer/qwen-node';
import { generateDemoModel, type DemoModelOptions } from './demo';

export interface WriteDemoModelOptions extends DemoModelOptions {
  /** Write tokenizer.json + tokenizer_config.json (default true). */
  tokenizer?: boolean;
}

/** Write the demo model into `dir` (created if needed); returns the file names and sizes written. */
export async function writeDemoModel(dir: string, options: WriteDemoModelOptions = {}): Promise<{ name: string; bytes: number }[]> {
  const { tokenizer = true, ...rest } = options;
  const qwen = rest.family === 'qwen2' || rest.family === 'qwen3';
  const source = !tokenizer ? null : qwen ? await readQwen3TokenizerSource() : await readLlama3TokenizerJson();
  const files = generateDemoModel(source, rest);
  await mkdir(dir, { recursive: true });
  const written: { name: string; bytes: number }[] = [];
  for (const [name, bytes] of files) {
    await writeFile(join(dir, name), bytes);
    written.push({ name, bytes: bytes.byteLength });
  }
  return written;
}
