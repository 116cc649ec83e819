// Every benchmark, in the order they run. Add a module here to make it part of `npm run bench`.
import { attentionBench } from './attention';
import { batchDecodeBench } from './batch-decode';
import { classroomBench } from './classroom';
import { collectLocalBench } from './collect-local';
import type { Benchmark } from './harness';
import { decodeBench } from './decode';
import { familiesBench } from './families';
import { loadBench } from './load';
import { loadGgufBench } from './load-gguf';
import { matmulBench } from './matmul';
import { matmulF16Bench } from './matmul-f16';
import { matmulGemvBench } from './matmul-gemv';
import { matmulNarrowBench } from './matmul-narrow';
import { matmulSgmatBench } from './matmul-sgmat';
import { modelStepBench } from './model-step';
import { peak } from './peak';
import { quantBench } from './quant';
import { stepAccountingBench } from './step-accounting';
import { dpoStepBench, trainStepBench } from './train-step';
import { trainStepVsBeforeBench } from './train-step-vs-before';

export const BENCHMARKS: readonly Benchmark[] = [peak, matmulBench, matmulNarrowBench, matmulSgmatBench, matmulGemvBench, matmulF16Bench, attentionBench, modelStepBench, trainStepBench, trainStepVsBeforeBench, dpoStepBench, stepAccountingBench, quantBench, decodeBench, batchDecodeBench, collectLocalBench, familiesBench, loadBench, loadGgufBench, classroomBench];
