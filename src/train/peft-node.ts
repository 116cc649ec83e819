// Node: PEFT adapter folders on disk (peft.ts holds the format itself).
import { readdir, readFile } from 'node:fs/promises';
import { writeFolderFiles } from './files-node';
import { join } from 'node:path';
import type { ModelConfig } from '../model/config';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, exportPeftAdapter, importPeftAdapter, PeftError, type HostAdapter, type PeftExportOptions, type PeftImportResult } from './peft';

/** The adapter files of a folder (adapter_config.json, adapter_model.safetensors, and .bin for a clear refusal). */
export async function readPeftFolder(dir: string): Promise<Map<string, Uint8Array>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new PeftError(`${dir}: cannot read the adapter folder (${(e as Error).message})`, { cause: e });
  }
  const files = new Map<string, Uint8Array>();
  for (const name of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, 'adapter_model.bin'])
    if (names.includes(name)) files.set(name, name.endsWith('.bin') ? new Uint8Array(0) : new Uint8Array(await readFile(join(dir, name))));
  if (!files.has(ADAPTER_CONFIG_FILE)) throw new PeftError(`${dir}: no ${ADAPTER_CONFIG_FILE}; not a PEFT adapter folder`);
  return files;
}

export async function loadPeftAdapter(dir: string, model: ModelConfig): Promise<PeftImportResult> {
  try {
    return importPeftAdapter(await readPeftFolder(dir), model);
  } catch (e) {
    if (e instanceof PeftError && !e.message.startsWith(dir)) e.message = `${dir}: ${e.message}`;
    throw e;
  }
}

export async function savePeftAdapter(dir: string, adapter: HostAdapter, options: PeftExportOptions = {}): Promise<void> {
  await writeFolderFiles(dir, exportPeftAdapter(adapter, options));
}
