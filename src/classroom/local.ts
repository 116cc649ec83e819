// A local source of the classroom (sources.json {"local": true, "model": …}) served from the
// instructor's GPU: the model loaded once with the CLI's loader and answered by the `fuse-studio
// serve` engine (serve/model-backend.ts, one request at a time on the GPU) through its OpenAI
// handler, in process. The proxy in front of it caches and coalesces as for any source, so a class
// asking the same items generates each once.
import { loadModelForCli, openModelSource } from '../cli/model';
import type { LocalSource } from '../data/local-source';
import { createModelBackend } from '../serve/model-backend';
import { createOpenAIHandler } from '../serve/openai-server';
import { handlerUpstream, type Upstream } from './proxy';

export interface LoadedLocalSource {
  upstream: Upstream;
  modelId: string;
  /** Waits for the running request, then frees the GPU memory. */
  release(): Promise<void>;
}

export async function loadLocalSource(s: LocalSource, o: { dateString?: string } = {}): Promise<LoadedLocalSource> {
  const m = await loadModelForCli(await openModelSource(s.model));
  try {
    const backend = createModelBackend(m, { modelId: s.name, defaultMaxTokens: s.max_tokens, ...(o.dateString ? { dateString: o.dateString } : {}) });
    return {
      upstream: handlerUpstream(createOpenAIHandler(backend), backend.modelId),
      modelId: backend.modelId,
      release: async () => {
        await backend.idle();
        m.release();
      },
    };
  } catch (e) {
    m.release();
    throw e;
  }
}
