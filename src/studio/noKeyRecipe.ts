// "Fusion with no API key": the whole recipe on this machine with nothing but downloads — the
// bundled starter prompts (src/data/starter-prompts.json), two local sources of different
// families, a local reward model as the judge, and a small target to load on the Model page.
// planNoKeyRecipe says what it downloads and how much work it is before anything starts;
// setUpNoKeyRecipe puts it in place (sources, judge, prompts); the Data page then runs it.

import STARTER from '../data/starter-prompts.json';
import { estimateTokens } from '../data/prompt-length';
import { FAMILIES } from '../model/families';
import { downloadSize, presetById, presetModelConfig, type ModelPreset } from '../model/presets';
import type { DeviceSpeed } from '../model/speed';
import { estimateGeneration, estimateSequences, TRAIN_FORWARDS, type PhaseEstimate } from '../model/time-estimate';
import { DPO_DEFAULTS, SFT_DEFAULTS } from '../train/defaults';
import { useDataStore } from './dataStore';
import { useLocalSourcesStore } from './localSources';
import { useSourcesStore } from './sourcesStore';

export interface NoKeyRecipe {
  /** Preset aliases of causal LMs of different families. */
  sources: string[];
  /** A reward model preset. */
  reward: string;
  /** The target preset (fine-tuned on the Train page). */
  target: string;
  /** Responses per prompt and new tokens per response, of each source. */
  n: number;
  maxTokens: number;
}

export const NO_KEY_RECIPE: NoKeyRecipe = { sources: ['llama-3.2-1b', 'qwen3-0.6b'], reward: 'skywork-reward-v2-qwen3-0.6b', target: 'smollm2-135m', n: 2, maxTokens: 384 };

export const STARTER_PROMPT_COUNT = STARTER.length;

export interface NoKeyPlan {
  models: { role: 'source' | 'reward' | 'target'; preset: ModelPreset; bytes: number }[];
  downloadBytes: number;
  prompts: number;
  /** Responses the sources generate in all, and new tokens at most. */
  responses: number;
  maxNewTokens: number;
}

const preset = (id: string): ModelPreset => {
  const p = presetById(id);
  if (!p) throw new Error(`the no-API-key recipe names "${id}", which is not a preset (src/model/presets.ts)`);
  return p;
};

/** What the recipe downloads (weights + tokenizer of each model) and generates, before it starts. */
export function planNoKeyRecipe(r: NoKeyRecipe = NO_KEY_RECIPE, prompts = STARTER_PROMPT_COUNT): NoKeyPlan {
  const families = new Set(r.sources.map((id) => preset(id).family));
  if (families.size < 2) throw new Error('the no-API-key recipe needs sources of at least two families: fusion learns from different models');
  const models = [
    ...r.sources.map((id) => ({ role: 'source' as const, preset: preset(id) })),
    { role: 'reward' as const, preset: preset(r.reward) },
    { role: 'target' as const, preset: preset(r.target) },
  ].map((m) => ({ ...m, bytes: downloadSize(m.preset).bytes }));
  const responses = prompts * r.n * r.sources.length;
  return { models, downloadBytes: models.reduce((a, m) => a + m.bytes, 0), prompts, responses, maxNewTokens: responses * r.maxTokens };
}

/** Tokens a chat template adds around a prompt (Llama 3's header and date lines are ~25). */
const TEMPLATE_TOKENS = 32;

/** Mean prompt length in tokens of the starter prompts, estimated from their text, with the template. */
export const STARTER_PROMPT_TOKENS = Math.round(STARTER.reduce((a, p) => a + estimateTokens(p.prompt), 0) / STARTER.length) + TEMPLATE_TOKENS;

export interface NoKeyEstimate {
  phases: PhaseEstimate[];
  seconds: number;
}

/**
 * The recipe's compute time on a device of `speed`: each source's generation, the reward model
 * scoring every answer, SFT (one example per prompt, the default epochs) and DPO (at most one pair
 * per prompt, chosen and rejected, a reference pass plus training), every answer taken at its
 * token limit. Downloads and model loads are not in it.
 */
export function estimateNoKeyRecipe(speed: DeviceSpeed, r: NoKeyRecipe = NO_KEY_RECIPE, prompts = STARTER_PROMPT_COUNT, promptTokens = STARTER_PROMPT_TOKENS): NoKeyEstimate {
  const seq = promptTokens + r.maxTokens;
  const target = presetModelConfig(preset(r.target));
  const phases = [
    ...r.sources.map((id) => estimateGeneration(`${preset(id).name} answers`, { config: presetModelConfig(preset(id)), prompts, n: r.n, promptTokens, maxNewTokens: r.maxTokens }, speed)),
    estimateSequences('Reward model scores', { config: presetModelConfig(preset(r.reward)), sequences: prompts * r.n * r.sources.length, tokens: seq }, 'reward', 1, speed),
    estimateSequences('SFT', { config: target, sequences: prompts * SFT_DEFAULTS.epochs, tokens: seq }, 'lm', TRAIN_FORWARDS, speed),
    estimateSequences('DPO', { config: target, sequences: 2 * prompts * DPO_DEFAULTS.epochs, tokens: seq }, 'lm', 1 + TRAIN_FORWARDS, speed),
  ];
  return { phases, seconds: phases.reduce((a, p) => a + p.seconds, 0) };
}

/**
 * Puts the recipe in place: its local sources (those not there yet, with their family's sampling),
 * the local reward model as the judge, the starter prompts imported into the Data page's run.
 * Nothing is downloaded here: the sources load during collection, the reward model when the run
 * starts, the target on the Model page.
 */
export async function setUpNoKeyRecipe(r: NoKeyRecipe = NO_KEY_RECIPE): Promise<void> {
  const local = useLocalSourcesStore.getState();
  for (const id of r.sources) {
    if (local.entries.some((e) => e.model === id)) continue;
    const p = preset(id);
    const s = FAMILIES[p.family].sampling;
    local.add({ model: id, name: p.name, n: r.n, max_tokens: r.maxTokens, temperature: s.temperature, top_p: s.topP, ...(s.repetitionPenalty !== undefined ? { repetition_penalty: s.repetitionPenalty } : {}) });
  }
  const sources = useSourcesStore.getState();
  if (!sources.loaded) await sources.load();
  useSourcesStore.getState().setJudge({ kind: 'local-reward', localReward: { model: r.reward } });
  const data = useDataStore.getState();
  if (!data.doc) await data.load();
  const file = new File([JSON.stringify(STARTER)], 'starter-prompts.json', { type: 'application/json' });
  await useDataStore.getState().importFile(file, { domain: 'instruction', mapping: {} });
}
