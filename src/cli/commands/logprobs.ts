// fuse-studio logprobs: per-record log-probabilities under the model (and an optional adapter),
// one JSON line per record on stdout:
//   SFT record  {"logprob_sum": Σ log p over the target tokens, "n_tokens": their count}
//   DPO record  {"chosen": {…}, "rejected": {…}} over each side's response tokens
// How records become tokens and labels: see ../records-tokens.ts. Every line is parsed and checked
// before any weight is loaded; a malformed line stops the command, naming the line.
import { readFile } from 'node:fs/promises';
import { parseJsonl } from '../../data/records';
import { scoreSequences, type LabelledSequence, type SequenceScore } from '../../model/score';
import { hasTokenizer, loadModelForCli, openModelSource } from '../model';
import { parseScoringRecord, tokenizeForScoring, type ScoringItem } from '../records-tokens';
import type { LOGPROBS_OPTIONS } from '../commands';
import { intOption, UsageError, type Parsed } from './args';

const score = (s: SequenceScore) => ({ logprob_sum: s.logprobSum, n_tokens: s.nTokens });

export async function run({ values: v }: Parsed<typeof LOGPROBS_OPTIONS>): Promise<number> {
  if (!v.model) throw new UsageError('logprobs: --model DIR|URL is required');
  if (!v.data) throw new UsageError('logprobs: --data FILE.jsonl is required');
  const batchSize = intOption('batch-size', v['batch-size']);
  if (batchSize !== undefined && batchSize < 1) throw new UsageError(`--batch-size: must be ≥ 1, got ${batchSize}`);

  let text: string;
  try {
    text = await readFile(v.data, 'utf8');
  } catch (e) {
    throw new Error(`${v.data}: cannot read (${(e as Error).message})`, { cause: e });
  }
  const parsed = parseJsonl(text, parseScoringRecord);
  if (parsed.errors.length) {
    const e = parsed.errors[0]!;
    const more = parsed.errors.length > 1 ? ` (and ${parsed.errors.length - 1} more bad lines)` : '';
    throw new Error(`${v.data} line ${e.line}: ${e.message}${more}`);
  }
  const source = await openModelSource(v.model);
  const needsText = parsed.records.findIndex((r) => r.kind !== 'sft-tokens' && r.kind !== 'dpo-tokens');
  if (needsText >= 0 && !(await hasTokenizer(source)))
    throw new Error(
      `${v.data} line ${parsed.lines[needsText]}: text records need a tokenizer, and ${source.description} has no tokenizer.json; ` +
        'use pre-tokenized records ({"input_ids","labels"} or {"prompt_input_ids","chosen_input_ids","rejected_input_ids"})',
    );

  const m = await loadModelForCli(source, { adapter: v.adapter });
  try {
    const opts = v['date-string'] === undefined ? {} : { dateString: v['date-string'] };
    const items: ScoringItem[] = parsed.records.map((r, i) => {
      try {
        return tokenizeForScoring(r, m.tokenizer, opts);
      } catch (e) {
        throw new Error(`${v.data} line ${parsed.lines[i]}: ${(e as Error).message}`, { cause: e });
      }
    });
    const seqs: LabelledSequence[] = items.flatMap((it) => (it.kind === 'sft' ? [it.seq] : [it.chosen, it.rejected]));
    const V = m.loaded.config.vocabSize;
    // Name the line of an out-of-vocabulary id rather than the sequence index.
    items.forEach((it, i) => {
      for (const s of it.kind === 'sft' ? [it.seq] : [it.chosen, it.rejected])
        for (let t = 0; t < s.ids.length; t++)
          if (s.ids[t]! >= V) throw new Error(`${v.data} line ${parsed.lines[i]}: token id ${s.ids[t]} is outside the model's vocabulary (${V})`);
    });
    const progress = process.stderr.isTTY ? (done: number, total: number) => process.stderr.write(`\r\x1b[Kscored ${done}/${total} sequences`) : undefined;
    const scores = await scoreSequences(m.model, seqs, { lora: m.lora, batchSize, onProgress: progress });
    if (progress) process.stderr.write('\r\x1b[K');
    let k = 0;
    const lines = items.map((it) => JSON.stringify(it.kind === 'sft' ? score(scores[k++]!) : { chosen: score(scores[k++]!), rejected: score(scores[k++]!) }));
    process.stdout.write(lines.map((l) => l + '\n').join(''));
    return 0;
  } finally {
    m.release();
  }
}
