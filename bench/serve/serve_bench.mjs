// Streams completions from a running OpenAI-compatible server at several concurrency levels and
// reports aggregate decode tokens/s and time-to-first-token percentiles. No npm packages needed.
// usage: node serve_bench.mjs BASE_URL MODEL [--streams 1,4,8,16] [--requests-per-stream 3]
//                             [--max-tokens 64] [--prompt-words 48] [--key KEY] [--json]
const [baseURL, model, ...rest] = process.argv.slice(2);
if (!baseURL || !model) {
  console.error('usage: node serve_bench.mjs BASE_URL MODEL [--streams 1,4,8,16] [--requests-per-stream N] ' +
                '[--max-tokens N] [--prompt-words N] [--key KEY] [--json]');
  process.exit(2);
}
const opt = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : fallback;
};
const streams = opt('--streams', '1,4,8,16').split(',').map(Number);
const perStream = Number(opt('--requests-per-stream', '3'));
const maxTokens = Number(opt('--max-tokens', '64'));
const promptWords = Number(opt('--prompt-words', '48'));
const key = opt('--key', 'none');
const asJson = rest.includes('--json');

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1), lo = Math.floor(rank), hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
};

const words = ['river', 'stone', 'lamp', 'garden', 'cloud', 'engine', 'window', 'forest', 'market', 'signal'];
// A distinct prompt per request, so no request reuses another's cached prefix.
const promptFor = (n) => Array.from({ length: promptWords }, (_, i) => words[(n * 31 + i * 7 + (i * i) % 5) % words.length]).join(' ');

let requestCounter = 0;
async function one() {
  const t0 = performance.now();
  const res = await fetch(`${baseURL}/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify({ model, prompt: promptFor(requestCounter++), max_tokens: maxTokens, temperature: 0,
                           stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffer = '', ttft = null, tokens = 0, tLast = t0;
  for await (const part of res.body) {
    buffer += decoder.decode(part, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.error) throw new Error(JSON.stringify(chunk.error));
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      if (ttft === null && chunk.choices?.[0]?.text) ttft = performance.now() - t0;
    }
    tLast = performance.now();
  }
  return { ttft: ttft ?? tLast - t0, tokens, ms: tLast - t0 };
}

const rows = [];
await one();  // warm-up
for (const n of streams) {
  const t0 = performance.now();
  const results = (await Promise.all(Array.from({ length: n }, async () => {
    const mine = [];
    for (let r = 0; r < perStream; r++) mine.push(await one());
    return mine;
  }))).flat();
  const seconds = (performance.now() - t0) / 1000;
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  const ttfts = results.map((r) => r.ttft);
  rows.push({ streams: n, requests: results.length, tokens, seconds,
              aggregate_tokens_per_s: tokens / seconds,
              per_stream_tokens_per_s: results.reduce((a, r) => a + r.tokens / ((r.ms - r.ttft) / 1000 || 1), 0) / results.length,
              ttft_p50_ms: percentile(ttfts, 50), ttft_p95_ms: percentile(ttfts, 95), ttft_p99_ms: percentile(ttfts, 99) });
}

if (asJson) {
  process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
} else {
  console.log(`model ${model}, ${promptWords}-word prompts, ${maxTokens} tokens per request, ${perStream} requests per stream`);
  console.log('streams  requests  aggregate tok/s  per-stream tok/s  TTFT p50 ms  p95 ms  p99 ms');
  for (const r of rows) {
    console.log(`${String(r.streams).padStart(7)}  ${String(r.requests).padStart(8)}  ${r.aggregate_tokens_per_s.toFixed(1).padStart(15)}` +
                `  ${r.per_stream_tokens_per_s.toFixed(1).padStart(16)}  ${r.ttft_p50_ms.toFixed(1).padStart(11)}` +
                `  ${r.ttft_p95_ms.toFixed(1).padStart(6)}  ${r.ttft_p99_ms.toFixed(1).padStart(6)}`);
  }
}
