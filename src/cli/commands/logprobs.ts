// fuse-studio logprobs: per-record log-probabilities under the model (and an optional adapter),
// one JSON line per record on stdout:
//   SFT record  {"logprob_sum": Σ log p over the target tokens, "n_tokens": their count}
//   DPO record  {"chosen": {…}, "rejected": {…}} over each side's response tokens
// How records become tokens and labels: see ../records-tokens.ts; reading them: ../record-file.ts
// (every line is parsed and checked before any weight is loaded; a malformed line stops the
// command, naming the line).
import { scoreSequences, type LabelledSequence, type SequenceScore } from '../../model/score';
import type { LOGPROBS_OPTIONS } from '../commands';
import { loadModelForCli, openModelSource, parseQuant } from '../model';
import { checkTokenizerFor, checkVocabulary, mapRecords, progressOnTerminal, readRecordFile } from '../record-file';
import { tokenizeForScoring, type ScoringItem } from '../records-tokens';
import { intOption, UsageError, type Parsed } from './args';

const score = (s: SequenceScore) => ({ logprob_sum: s.logprobSum, n_tokens: s.nTokens });
const seqsOf = (it: ScoringItem): LabelledSequence[] => (it.kind === 'sft' ? [it.seq] : [it.chosen, it.rejected]);

export async function run({ values: v }: Parsed<typeof LOGPROBS_OPTIONS>): Promise<number> {
  const batchSize = intOption('batch-size', v['batch-size']);
  if (batchSize !== undefined && batchSize < 1) throw new UsageError(`--batch-size: must be ≥ 1, got ${batchSize}`);

  const file = await readRecordFile(v.data);
  const source = await openModelSource(v.model);
  await checkTokenizerFor(file, source);
  const m = await loadModelForCli(source, { adapter: v.adapter, quant: parseQuant(v.quant) });
  try {
    const opts = v['date-string'] === undefined ? {} : { dateString: v['date-string'] };
    const items = mapRecords(file, (r) => tokenizeForScoring(r, m.tokenizer, opts));
    checkVocabulary(file, items, (it) => seqsOf(it).map((s) => s.ids), m.loaded.config.vocabSize);
    const progress = progressOnTerminal('scored');
    const scores = await scoreSequences(m.model, items.flatMap(seqsOf), { lora: m.lora, batchSize, onProgress: progress });
    if (progress) process.stderr.write('\r\x1b[K');
    let k = 0;
    const lines = items.map((it) => JSON.stringify(it.kind === 'sft' ? score(scores[k++]!) : { chosen: score(scores[k++]!), rejected: score(scores[k++]!) }));
    process.stdout.write(lines.map((l) => l + '\n').join(''));
    return 0;
  } finally {
    m.release();
  }
}
