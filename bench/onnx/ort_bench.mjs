// ONNX Runtime (onnxruntime-node, CPU) side of bench/onnx/run: the same measurements as
// `edgelm onnx-bench`, printed as one JSON line.
//   node ort_bench.mjs NODE_DEPS_DIR MODEL.onnx SEQ ITERATIONS THREADS
import { createRequire } from 'module';
import path from 'path';

const [nodeDeps, modelPath, seqArg, itersArg, threadsArg] = process.argv.slice(2);
const require = createRequire(path.resolve(nodeDeps) + '/');
const ort = require('onnxruntime-node');
const seq = Number(seqArg), iterations = Number(itersArg), threads = Number(threadsArg);

const loadStart = process.hrtime.bigint();
const session = await ort.InferenceSession.create(modelPath, {
  executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
  graphOptimizationLevel: 'all' });
const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;

// The same token ids as edgelm onnx-bench: (i * 7 + 3) % vocab.
const vocab = session.outputMetadata?.[0]?.shape?.[2] ?? 8192;
const ids = new BigInt64Array(seq);
for (let i = 0; i < seq; ++i) ids[i] = BigInt((i * 7 + 3) % (typeof vocab === 'number' ? vocab : 8192));
const feeds = { input_ids: new ort.Tensor('int64', ids, [1, seq]) };
const times = [];
for (let i = 0; i <= iterations; ++i) {
  const start = process.hrtime.bigint();
  await session.run(feeds);
  if (i > 0) times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
times.sort((a, b) => a - b);
const pct = (p) => times[Math.min(times.length - 1, Math.round(p * (times.length - 1)))];
console.log(JSON.stringify({ runtime: 'onnxruntime-node', threads, seq, load_ms: +loadMs.toFixed(2),
  p50_ms: +pct(0.5).toFixed(3), p95_ms: +pct(0.95).toFixed(3), p99_ms: +pct(0.99).toFixed(3),
  peak_rss_mib: +(process.resourceUsage().maxRSS / 1024).toFixed(1) }));
