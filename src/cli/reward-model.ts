// A reward model for the CLI (`reward`, and build-data's local-reward judge): --model as a folder,
// URL or Hub repo; a causal LM is refused from its config.json, before any weight is read. Loading
// it is model.ts's loadModelForCli, as for every model command.
import { engineRewardRunner, expectRewardConfig, RewardModelError, type RewardTokenOptions } from '../data/local-reward';
import type { RewardModelRunner } from '../data/score';
import { parseModelConfig } from '../model/config';
import type { ModelSource } from '../model/source';
import { hasTokenizer, loadModelForCli, openModelSource } from './model';

/** Opens `spec` and checks it is a *ForSequenceClassification reward model (config.json only). */
export async function openRewardModelSource(spec: string): Promise<ModelSource> {
  const source = await openModelSource(spec);
  const generation = (await source.has('generation_config.json')) ? await source.json('generation_config.json') : undefined;
  expectRewardConfig(parseModelConfig(await source.json('config.json'), generation), source.description);
  return source;
}

/**
 * A local reward model as build-data's judge: checked now (a *ForSequenceClassification with a
 * tokenizer; nothing loaded), loaded onto the GPU when it first scores, so local sources generate
 * before it takes any GPU memory.
 */
export async function loadRewardRunner(spec: string, o: RewardTokenOptions = {}): Promise<{ runner: RewardModelRunner; load(): Promise<void>; release(): void }> {
  const source = await openRewardModelSource(spec);
  if (!(await hasTokenizer(source))) throw new RewardModelError(`${source.description} has no tokenizer.json: a reward model that judges responses reads them as text`);
  let loading: Promise<{ runner: RewardModelRunner; release(): void }> | null = null;
  const load = async () => {
    const m = await loadModelForCli(source);
    try {
      return { runner: engineRewardRunner({ model: m.model, tokenizer: m.tokenizer, description: source.description }, o), release: m.release };
    } catch (e) {
      m.release();
      throw e;
    }
  };
  return {
    runner: {
      async score(conversations, signal) {
        loading ??= load();
        return (await loading).runner.score(conversations, signal);
      },
    },
    /** Loads it now (build-data: when scoring begins, so a load failure stops the run there). */
    async load() {
      loading ??= load();
      await loading;
    },
    release() {
      void loading?.then((m) => m.release(), () => {});
    },
  };
}
