// fuse-studio reward: a reward model's score of each record, one JSON line per record on stdout:
//   {"messages": […]} or {"input_ids": […]}        {"reward": r}
//   DPO records (prompt/chosen/rejected or *_input_ids)  {"chosen": r, "rejected": r}
// The model is a *ForSequenceClassification checkpoint (e.g. Skywork-Reward-V2-Qwen3-0.6B); a
// causal LM is refused from its config.json. How records become the model's input: see
// ../records-tokens.ts (tokenizeForReward). Every line is parsed and checked before any weight is
// loaded; a malformed line stops the command, naming the line.
import { scoreRewards } from '../../model/reward';
import type { REWARD_OPTIONS } from '../commands';
import { loadModelForCli } from '../model';
import { checkTokenizerFor, checkVocabulary, mapRecords, progressOnTerminal, readRecordFile } from '../record-file';
import { tokenizeForReward, type RewardItem } from '../records-tokens';
import { openRewardModelSource } from '../reward-model';
import { intOption, UsageError, type Parsed } from './args';

const seqsOf = (it: RewardItem): number[][] => (it.kind === 'single' ? [it.ids] : [it.chosen, it.rejected]);

export async function run({ values: v }: Parsed<typeof REWARD_OPTIONS>): Promise<number> {
  const batchSize = intOption('batch-size', v['batch-size']);
  if (batchSize !== undefined && batchSize < 1) throw new UsageError(`--batch-size: must be ≥ 1, got ${batchSize}`);

  const file = await readRecordFile(v.data);
  const source = await openRewardModelSource(v.model);
  await checkTokenizerFor(file, source);
  const m = await loadModelForCli(source);
  try {
    const opts = v['date-string'] === undefined ? {} : { dateString: v['date-string'] };
    const items = mapRecords(file, (r) => tokenizeForReward(r, m.tokenizer, opts));
    checkVocabulary(file, items, seqsOf, m.loaded.config.vocabSize);
    const progress = progressOnTerminal('scored');
    const rewards = await scoreRewards(m.model, items.flatMap(seqsOf), { batchSize, onProgress: progress });
    if (progress) process.stderr.write('\r\x1b[K');
    let k = 0;
    const lines = items.map((it) => JSON.stringify(it.kind === 'single' ? { reward: rewards[k++] } : { chosen: rewards[k++], rejected: rewards[k++] }));
    process.stdout.write(lines.map((l) => l + '\n').join(''));
    return 0;
  } finally {
    m.release();
  }
}
