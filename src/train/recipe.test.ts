import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDpoJsonl, parseSftJsonl, type DpoRecord, type SftRecord } from '../data/records';
import { writeFolderFiles } from './files-node';
import { buildRecipe, llamaFactoryTemplate, optimizerSteps, RECIPE_PINS, RecipeError, sftStage, yamlFloat } from './recipe';
import { findPython, keywordProblems, pythonCalls } from './testing/python-calls';
import { SIGNATURES } from './testing/recipe-signatures';

const SFT: SftRecord[] = [
  { kind: 'sft-messages', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] },
  { kind: 'sft-messages', messages: [{ role: 'user', content: '2+2?' }, { role: 'assistant', content: '4' }] },
];
const DPO: DpoRecord[] = [
  { kind: 'dpo-messages', prompt: [{ role: 'user', content: 'Capital of France?' }], chosen: [{ role: 'assistant', content: 'Paris.' }], rejected: [{ role: 'assistant', content: 'Lyon.' }] },
];

/** Each callee as trl/train.py writes it -> its entry in SIGNATURES. */
const CALLEES: Record<string, string> = {
  'p.add_argument': 'argparse.ArgumentParser.add_argument',
  'AutoModelForCausalLM.from_pretrained': 'transformers.PreTrainedModel.from_pretrained',
  load_dataset: 'datasets.load_dataset',
  'data.map': 'datasets.Dataset.map',
  LoraConfig: 'peft.LoraConfig',
  'PeftModel.from_pretrained': 'peft.PeftModel.from_pretrained',
  SFTConfig: 'trl.SFTConfig',
  DPOConfig: 'trl.DPOConfig',
  SFTTrainer: 'trl.SFTTrainer',
  DPOTrainer: 'trl.DPOTrainer',
  'shutil.rmtree': 'shutil.rmtree',
};

let py: string;
let dir: string;
beforeAll(async () => {
  py = findPython();
  dir = await mkdtemp(join(tmpdir(), 'recipe-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function written(files: Map<string, string>, sub: string): Promise<string> {
  const out = join(dir, sub);
  await writeFolderFiles(out, files);
  return out;
}

const yamlOf = (file: string) => JSON.parse(execFileSync(py, ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file], { encoding: 'utf8' }));

describe('scale-out recipe', () => {
  it('bundles the same data and hyperparameters for TRL and LLaMA-Factory', async () => {
    const files = buildRecipe({ model: 'meta-llama/Llama-3.2-1B-Instruct', sft: SFT, dpo: DPO, sftHyper: { lr: 2e-4, epochs: 2 }, dpoHyper: { lossType: 'ln', beta: 10 }, numGpus: 2, name: 'demo' });
    expect([...files.keys()].sort()).toEqual([
      'README.md',
      'data/dpo.jsonl',
      'data/sft.jsonl',
      'llamafactory/dataset_info.json',
      'llamafactory/dpo.yaml',
      'llamafactory/dpo_sharegpt.jsonl',
      'llamafactory/ds_z2_config.json',
      'llamafactory/sft.yaml',
      'recipe.json',
      'trl/accelerate_deepspeed_zero2.yaml',
      'trl/requirements.txt',
      'trl/run.sh',
      'trl/train.py',
    ]);
    // The data parses back to the same records with our own readers (TRL conversational).
    const sft = parseSftJsonl(files.get('data/sft.jsonl')!);
    expect(sft.errors).toEqual([]);
    expect(sft.records).toEqual(SFT);
    const dpo = parseDpoJsonl(files.get('data/dpo.jsonl')!);
    expect(dpo.records).toEqual(DPO);
    expect(JSON.parse(files.get('llamafactory/dpo_sharegpt.jsonl')!.trim())).toEqual({
      messages: [{ role: 'user', content: 'Capital of France?' }],
      chosen: { role: 'assistant', content: 'Paris.' },
      rejected: { role: 'assistant', content: 'Lyon.' },
    });
    const info = JSON.parse(files.get('llamafactory/dataset_info.json')!);
    expect(info.fuse_sft.file_name).toBe('../data/sft.jsonl');
    expect(info.fuse_dpo).toMatchObject({ ranking: true, formatting: 'sharegpt' });

    const recipe = JSON.parse(files.get('recipe.json')!);
    expect(recipe.sft).toMatchObject({ lr: 2e-4, epochs: 2, loraRank: 16, loraAlpha: 32, batch: { perDevice: 4, accumulation: 2, effective: 16 } });
    expect(recipe.dpo).toMatchObject({ lossType: 'ln', beta: 10, lr: 1e-5 });
    const run = files.get('trl/run.sh')!;
    expect(run).toMatch(/--stage sft[\s\S]*--learning_rate 0\.0002[\s\S]*--stage dpo[\s\S]*--sft_adapter out\/demo-sft[\s\S]*--beta 10 --loss ln-dpo/);
    expect(files.get('trl/accelerate_deepspeed_zero2.yaml')).toMatch(/num_processes: 2\n/);
    expect(files.get('llamafactory/dpo.yaml')).toMatch(/adapter_name_or_path: saves\/demo-sft\nref_model: meta-llama\/Llama-3\.2-1B-Instruct\nref_model_adapters: saves\/demo-sft/);
    expect(files.get('README.md')).toMatch(/continues\s+training that same adapter/);

    const out = await written(files, 'full');
    execFileSync('bash', ['-n', join(out, 'trl/run.sh')]);
    // PyYAML must read floats as floats (it reads "2e-4" as a string).
    const lf = yamlOf(join(out, 'llamafactory/sft.yaml'));
    expect(lf).toMatchObject({ stage: 'sft', finetuning_type: 'lora', learning_rate: 2e-4, num_train_epochs: 2, lora_rank: 16, lora_alpha: 32, cutoff_len: 1024, dataset: 'fuse_sft', template: 'llama3', per_device_train_batch_size: 4, gradient_accumulation_steps: 2 });
    expect(lf.lora_target).toBe('q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj');
    expect(yamlOf(join(out, 'trl/accelerate_deepspeed_zero2.yaml'))).toMatchObject({ distributed_type: 'DEEPSPEED', deepspeed_config: { zero_stage: 2 }, mixed_precision: 'bf16' });
  });

  it('compiles every generated Python file, and passes only keyword arguments the pinned versions accept', async () => {
    for (const [lossType, hasSft] of [['ln', true], ['sigmoid', false]] as const) {
      const files = buildRecipe({ model: 'org/m', sft: hasSft ? SFT : [], dpo: DPO, dpoHyper: { lossType } });
      const out = await written(files, `py-${lossType}`);
      const scripts = [...files.keys()].filter((f) => f.endsWith('.py'));
      expect(scripts).toEqual(['trl/train.py']);
      for (const f of scripts) {
        execFileSync(py, ['-m', 'py_compile', join(out, f)]);
        const found = pythonCalls(py, join(out, f));
        // The check reached the calls that matter, not an empty list.
        for (const callee of ['SFTConfig', 'DPOConfig', 'LoraConfig', 'SFTTrainer', 'DPOTrainer', 'PeftModel.from_pretrained', 'AutoModelForCausalLM.from_pretrained'])
          expect(found.calls.some((c) => c.callee === callee), callee).toBe(true);
        expect(found.helpers.training_args!.dictKeys).toContain('warmup_steps');
        expect(keywordProblems(found, CALLEES, SIGNATURES)).toEqual([]);
      }
    }
  });

  it('the keyword check catches what current TRL and transformers removed', async () => {
    // The previous script's calls (TRL 0.2x era): each of these fails on the pinned versions.
    const old = join(dir, 'old.py');
    await writeFile(
      old,
      `from trl import DPOConfig
def common(a):
    return dict(output_dir=a, warmup_ratio=0.1)
extra = {}
args = DPOConfig(**common(1), **extra, max_prompt_length=None, model_adapter_name="train", ref_adapter_name="reference", beta=0.1)
model = AutoModelForCausalLM.from_pretrained("m", torch_dtype="bfloat16")
thing.frobnicate(x=1)
`,
    );
    execFileSync(py, ['-m', 'py_compile', old]);
    const problems = keywordProblems(pythonCalls(py, old), CALLEES, SIGNATURES);
    expect(problems).toEqual([
      'line 5: DPOConfig: **… is not a call of a helper returning dict(...), so its keys cannot be checked',
      'line 5: DPOConfig: trl.DPOConfig has no keyword argument "max_prompt_length"',
      'line 5: DPOConfig: trl.DPOConfig has no keyword argument "model_adapter_name"',
      'line 5: DPOConfig: trl.DPOConfig has no keyword argument "ref_adapter_name"',
      'line 5: DPOConfig: trl.DPOConfig has no keyword argument "warmup_ratio"',
      'line 6: AutoModelForCausalLM.from_pretrained: transformers.PreTrainedModel.from_pretrained\'s keyword argument "torch_dtype" is deprecated',
      'line 7: thing.frobnicate: no signature on record for this callee (keywords x)',
    ]);
  });

  it('TRL script: LN-DPO is TRL\'s sigmoid_norm, the SFT adapter is continued as PEFT\'s "default", versions pinned', () => {
    const files = buildRecipe({ model: 'org/m', sft: SFT, dpo: DPO });
    const script = files.get('trl/train.py')!;
    expect(script).toMatch(/LOSS_TYPES = \{"dpo": "sigmoid", "ln-dpo": "sigmoid_norm"\}/);
    expect(script).toMatch(/loss_type=\[LOSS_TYPES\[a\.loss\]\]/);
    expect(script).toMatch(/PeftModel\.from_pretrained\(model, a\.sft_adapter, is_trainable=True\)\n/);
    expect(script).not.toMatch(/concatenated_forward|adapter_name=|max_prompt_length|warmup_ratio=|torch_dtype/);
    expect(script).not.toMatch(/TRL has no such loss/);
    expect(files.get('README.md')).toMatch(/loss_type="sigmoid_norm"/);
    const req = files.get('trl/requirements.txt')!;
    for (const [name, v] of Object.entries(RECIPE_PINS)) expect(req).toContain(`\n${name}==${v}\n`);
    for (const line of req.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^[a-z]+(==|>=)[0-9.]+$/);
    expect(script).toContain(`TRL ${RECIPE_PINS.trl}`);
  });

  it('LLaMA-Factory: the DPO learning rate fits the loss it runs; warmup as steps; the template from the model name', async () => {
    const ln = buildRecipe({ model: 'meta-llama/Llama-3.2-1B-Instruct', sft: SFT, dpo: DPO, dpoHyper: { lossType: 'ln' } });
    const text = ln.get('llamafactory/dpo.yaml')!;
    expect(text).toMatch(/no such loss/);
    expect(text).toMatch(/beta 0\.1 and learning rate 0\.000005 \(below\), the\n# rate that fits this loss/);
    const out = await written(ln, 'lf-ln');
    const dpo = yamlOf(join(out, 'llamafactory/dpo.yaml'));
    expect(dpo).toMatchObject({ stage: 'dpo', pref_loss: 'sigmoid', pref_beta: 0.1, learning_rate: 5e-6 });
    // The recipe and the TRL run keep the studio's LN-DPO settings.
    expect(JSON.parse(ln.get('recipe.json')!).dpo).toMatchObject({ lossType: 'ln', lr: 1e-5, beta: 10 });
    expect(ln.get('README.md')).toMatch(/beta 0\.1 and learning rate 0\.000005 \(stated in the file\)/);

    // Standard DPO keeps the user's numbers.
    const std = buildRecipe({ model: 'meta-llama/Llama-3.2-1B-Instruct', sft: [], dpo: DPO, dpoHyper: { lossType: 'sigmoid', lr: 3e-6, beta: 0.05 } });
    const stdDir = await written(std, 'lf-std');
    expect(yamlOf(join(stdDir, 'llamafactory/dpo.yaml'))).toMatchObject({ pref_loss: 'sigmoid', pref_beta: 0.05, learning_rate: 3e-6 });

    // warmup_steps: ceil(ratio × optimizer steps), never warmup_ratio (gone in transformers 5).
    const many = Array.from({ length: 1000 }, () => SFT[0]!);
    const big = buildRecipe({ model: 'Qwen/Qwen2.5-1.5B-Instruct', sft: many, dpo: [], numGpus: 8 });
    const bigDir = await written(big, 'lf-big');
    const s = sftStage();
    // 1000 records on 8 GPUs: 125 per GPU, 32 batches of 4, 32 optimizer steps (accumulation 1) × 3 epochs.
    expect(optimizerSteps(1000, s, 8)).toBe(96);
    expect(optimizerSteps(1000, s, 2)).toBe(3 * Math.ceil(Math.ceil(500 / 4) / 2));
    expect(yamlOf(join(bigDir, 'llamafactory/sft.yaml'))).toMatchObject({ warmup_steps: 10, template: 'qwen', per_device_train_batch_size: 4, gradient_accumulation_steps: 1 });
    for (const f of [...big.keys(), ...ln.keys()].filter((k) => k.endsWith('.yaml'))) expect(big.get(f) ?? ln.get(f)).not.toMatch(/^warmup_ratio:/m);

    expect([llamaFactoryTemplate('meta-llama/Llama-3.1-8B-Instruct'), llamaFactoryTemplate('Qwen/Qwen3-0.6B'), llamaFactoryTemplate('mistralai/Mistral-7B-Instruct-v0.3'), llamaFactoryTemplate('HuggingFaceTB/SmolLM2-1.7B-Instruct'), llamaFactoryTemplate('my/model')]).toEqual(['llama3', 'qwen3', 'mistral', 'smollm2', null]);
    const unknown = buildRecipe({ model: 'my/model', sft: SFT, dpo: [] }).get('llamafactory/sft.yaml')!;
    expect(unknown).toMatch(/does not say which chat template it uses[\s\S]*\ntemplate: default\n/);
  });

  it('writes only the stages it has data for; refuses records it cannot export', () => {
    const only = buildRecipe({ model: 'm', sft: [], dpo: DPO, dpoHyper: { lossType: 'sigmoid' } });
    expect(only.has('data/sft.jsonl') || only.has('llamafactory/sft.yaml')).toBe(false);
    expect(only.get('llamafactory/dpo.yaml')).not.toMatch(/adapter_name_or_path/);
    expect(only.get('llamafactory/dpo.yaml')).toMatch(/pref_beta: 0\.1\npref_loss: sigmoid/);
    expect(only.get('trl/run.sh')).not.toMatch(/--sft_adapter/);
    expect(() => buildRecipe({ model: 'm', sft: [{ kind: 'sft-tokens', inputIds: [1, 2], labels: [1, 2] }], dpo: [] })).toThrow(/SFT record 1 is pre-tokenized/);
    expect(() => buildRecipe({ model: 'm', sft: [], dpo: [] })).toThrow(RecipeError);
    expect(() => buildRecipe({ model: 'm', sft: SFT, dpo: [], name: 'a b' })).toThrow(/name/);
    expect([yamlFloat(2e-4), yamlFloat(1e-5), yamlFloat(3), yamlFloat(0.1), yamlFloat(5e-7)]).toEqual(['2.0e-4', '1.0e-5', '3.0', '0.1', '5.0e-7']);
  });

  // A real run of trl/train.py on CPU: set FUSE_TRL_PYTHON to a Python with the pinned versions
  // of trl/requirements.txt installed (no network needed; CI has no such Python).
  it.runIf(process.env.FUSE_TRL_PYTHON)('trl/train.py runs SFT, then LN-DPO continuing the SFT adapter, with the pinned versions', { timeout: 600_000 }, async () => {
    const { writeDemoModel } = await import('../model/demo-node');
    const model = join(dir, 'demo-model');
    await writeDemoModel(model);
    const sft = Array.from({ length: 4 }, (_, i) => SFT[i % 2]!);
    const dpo = Array.from({ length: 4 }, () => DPO[0]!);
    const hyper = { microBatchSize: 2, gradientAccumulationSteps: 1, maxLength: 128, loraRank: 4, loraAlpha: 8, epochs: 2 };
    const files = buildRecipe({ model, sft, dpo, numGpus: 1, name: 't', sftHyper: { ...hyper, lr: 1e-2 }, dpoHyper: { ...hyper, lr: 1e-2, lossType: 'ln' } });
    const out = await written(files, 'run');
    // run.sh's own arguments, without accelerate/DeepSpeed (CPU): python trl/train.py …
    const stages = files.get('trl/run.sh')!.split('\n\n').filter((b) => b.includes('trl/train.py'));
    const env = { ...process.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' };
    for (const block of stages) {
      const args = block.replace(/^#.*\n/gm, '').replace(/\\\n/g, ' ').replace(/^.*trl\/train\.py/s, '').replace('--bf16', '').trim().split(/\s+/);
      execFileSync(process.env.FUSE_TRL_PYTHON!, ['trl/train.py', ...args.map((a) => a.replace(/^'|'$/g, ''))], { cwd: out, env, stdio: 'pipe' });
    }
    expect((await readdir(join(out, 'out/t-sft'))).sort()).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));
    const dpoOut = await readdir(join(out, 'out/t-dpo'));
    expect(dpoOut).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));
    expect(dpoOut).not.toContain('ref');
  });
});
