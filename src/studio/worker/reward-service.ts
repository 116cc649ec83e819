// A local reward model in the worker (the Sources page's "A local reward model" judge): a
// *ForSequenceClassification checkpoint (e.g. Skywork-Reward-V2-Qwen3-0.6B) from a Hub repo, a URL
// or a local folder, held beside the Model page's model on the same GPU context. The Data page's
// pipeline (on the page) sends it batches of conversations; the rewards come back as numbers. A
// causal LM is refused from its config.json before any weight is downloaded.

import { engineRewardRunner, expectRewardConfig } from '../../data/local-reward';
import type { ChatMessage } from '../../data/records';
import type { RewardModelRunner } from '../../data/score';
import { parseModelConfig, type ModelConfig } from '../../model/config';
import { createDecoderModel, type DecoderModel } from '../../model/decoder';
import { loadModel, type LoadProgress } from '../../model/load';
import type { ModelSource } from '../../model/source';
import { directorySource, openRemoteModelSource } from '../../model/source-browser';
import { releaseWeights, type ModelWeights } from '../../model/weights';
import { loadTokenizer } from '../../tokenizer';
import { gpuContext } from './session';

export type RewardModelChoice = { kind: 'remote'; spec: string; token?: string } | { kind: 'directory'; handle: FileSystemDirectoryHandle };

export interface RewardModelSummary {
  /** What the Sources page stores as the judge's model: the spec, or `folder:<name>`. */
  key: string;
  /** Where it came from (the source's description). */
  source: string;
  config: ModelConfig;
}

export type RewardLoadEvent = { stage: string; progress: LoadProgress | null };

interface Held {
  summary: RewardModelSummary;
  model: DecoderModel;
  weights: ModelWeights;
  runner: RewardModelRunner;
}

let held: Held | null = null;
let loading: AbortController | null = null;
/** Scoring calls in flight, by the page's job id, so the page can cancel one (cancelScoring). */
const scoring = new Map<number, AbortController>();

function release(): void {
  if (!held) return;
  held.model.release();
  releaseWeights(held.weights);
  held = null;
}

export const rewardService = {
  /** Loads a reward model, replacing the one held. Progress events come at most every 100 ms. */
  async loadRewardModel(choice: RewardModelChoice, onEvent: (e: RewardLoadEvent) => void): Promise<RewardModelSummary> {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    const { signal } = controller;
    const stage = (s: string) => onEvent({ stage: s, progress: null });
    let last = 0;
    const onProgress = (p: LoadProgress) => {
      const now = performance.now();
      if (now - last < 100 && p.overall.loaded !== p.overall.total) return;
      last = now;
      onEvent({ stage: p.phase === 'download' ? 'Downloading' : 'Uploading to the GPU', progress: p });
    };
    try {
      release();
      stage('Connecting to the GPU…');
      const ctx = await gpuContext();
      let source: ModelSource;
      let key: string;
      if (choice.kind === 'remote') {
        stage('Contacting the server…');
        source = await openRemoteModelSource(choice.spec.trim(), { token: choice.token });
        key = choice.spec.trim();
      } else {
        source = directorySource(choice.handle);
        key = `folder:${choice.handle.name}`;
      }
      stage(`Reading ${source.description}…`);
      const generation = (await source.has('generation_config.json', { signal })) ? await source.json('generation_config.json', { signal }) : undefined;
      expectRewardConfig(parseModelConfig(await source.json('config.json', { signal }), generation), source.description);
      const loaded = await loadModel(ctx, source, { signal, onProgress });
      if (signal.aborted) {
        releaseWeights(loaded.weights);
        throw new DOMException('Loading was cancelled.', 'AbortError');
      }
      const model = createDecoderModel(ctx, loaded.weights);
      try {
        const tokenizer = loaded.tokenizerFiles ? loadTokenizer({ ...loaded.tokenizerFiles, generationConfig: loaded.generationConfig, name: source.description }) : null;
        const runner = engineRewardRunner({ model, tokenizer, description: source.description });
        held = { summary: { key, source: loaded.source, config: loaded.config }, model, weights: loaded.weights, runner };
        return held.summary;
      } catch (e) {
        model.release();
        releaseWeights(loaded.weights);
        throw e;
      }
    } catch (e) {
      if (signal.aborted) throw new Error('Loading was cancelled.', { cause: e });
      throw e;
    } finally {
      if (loading === controller) loading = null;
    }
  },

  cancelRewardLoad(): void {
    loading?.abort();
  },

  /** The reward model held, or null. */
  rewardModel(): RewardModelSummary | null {
    return held?.summary ?? null;
  },

  /**
   * Raw rewards of whole conversations (each ending in the assistant's answer), in order. `jobId`
   * names the call for cancelScoring: a cancelled call stops between the engine's sub-batches.
   */
  async scoreConversations(conversations: ChatMessage[][], jobId?: number): Promise<number[]> {
    if (!held) throw new Error('No reward model is loaded: load one on the Sources page (Judge: a local reward model).');
    const stop = new AbortController();
    if (jobId !== undefined) scoring.set(jobId, stop);
    try {
      return await held.runner.score(conversations, stop.signal);
    } finally {
      if (jobId !== undefined) scoring.delete(jobId);
    }
  },

  /** Stops a scoring call (the page's pipeline was cancelled). */
  cancelScoring(jobId: number): void {
    scoring.get(jobId)?.abort();
  },

  releaseRewardModel(): void {
    loading?.abort();
    release();
  },
};
