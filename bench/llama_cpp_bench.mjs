// Measures llama.cpp (through node-llama-cpp's prebuilt binaries) on a GGUF file the way
// `edgelm bench --json` measures edgelm, so bench/compare can print ratios from one run.
// usage: node llama_cpp_bench.mjs MODEL THREADS N_PROMPT N_GEN REPETITIONS
import {getLlama} from "node-llama-cpp";

const [modelPath, threadsArg, promptArg, genArg, repsArg] = process.argv.slice(2);
const threads = Number(threadsArg), nPrompt = Number(promptArg), nGen = Number(genArg), reps = Number(repsArg);

const stats = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return {mean, sd};
};
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  const rank = p / 100 * (s.length - 1), lo = Math.floor(rank), hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
};

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const loadStart = performance.now();  // like edgelm bench: model load + context + first decode
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
const context = await model.createContext({contextSize: Math.max(nPrompt + nGen + 8, 64), threads,
                                           batchSize: Math.max(nPrompt, 1), sequences: 1});
const sequence = context.getSequence();
const nVocab = model.tokens.vocabularySize ?? 512;
const tokens = (n) => Array.from({length: n}, (_, i) => (i * 7919 + 13) % nVocab);
await sequence.controlledEvaluate([[tokens(1)[0], {generateNext: {token: true}}]]);  // first token's logits
const loadMs = performance.now() - loadStart;

const pp = [], tg = [], ttft = [], perToken = [];
for (let rep = -1; rep < reps; rep++) {
  if (nPrompt > 0) {
    await sequence.clearHistory();
    const t0 = performance.now();
    // Logits of the last prompt token, as llama-bench's pp and edgelm bench compute them.
    const prompt = tokens(nPrompt);
    await sequence.controlledEvaluate([...prompt.slice(0, -1),
                                       [prompt[nPrompt - 1], {generateNext: {token: true}}]]);
    const s = (performance.now() - t0) / 1000;
    if (rep >= 0) { pp.push(nPrompt / s); ttft.push(s * 1000); }
  }
  if (nGen > 0) {
    await sequence.clearHistory();
    const gen = tokens(nGen);
    const t0 = performance.now();
    for (let i = 0; i < nGen; i++) {
      const t = performance.now();
      // Each decode step computes the output layer's logits and picks the next token, as a
      // generating user's does (and llama-bench's tg, and edgelm bench's). Plain
      // evaluateWithoutGeneratingNewTokens asks llama.cpp for no logits, so it would skip the
      // output matrix (for tied-embedding models the largest single read of a step).
      await sequence.controlledEvaluate([[gen[i], {generateNext: {token: true}}]]);
      if (rep >= 0) perToken.push(performance.now() - t);
    }
    if (rep >= 0) tg.push(nGen / ((performance.now() - t0) / 1000));
  }
}
const rssMib = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify({
  peer: "llama.cpp via node-llama-cpp", threads, load_ms: loadMs, peak_rss_mib: rssMib,
  pp_tokens_per_second: nPrompt > 0 ? stats(pp) : null, tg_tokens_per_second: nGen > 0 ? stats(tg) : null,
  ttft_ms: nPrompt > 0 ? percentile(ttft, 50) : null,
  decode_ms: nGen > 0 ? {p50: percentile(perToken, 50), p95: percentile(perToken, 95), p99: percentile(perToken, 99)} : null,
}));
await context.dispose();
await model.dispose();
await llama.dispose();
