// edgelm onnx-quantize / onnx-run / onnx-bench: the ONNX path (models exported from PyTorch).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "cli.h"
#include "edgelm/gguf.h"
#include "edgelm/onnx/causal_lm.h"
#include "edgelm/onnx/quantize.h"
#include "edgelm/tokenizer.h"

namespace edgelm::cli {

namespace {

Result<onnx::SessionOptions> session_options(const std::string& config_path, int threads,
                                             bool no_mmap) {
  EDGELM_TRY(Config config, config_from_file(config_path));
  if (threads > 0) config.threads = threads;
  if (no_mmap) config.use_mmap = false;
  return onnx::SessionOptions::from_config(config);
}

double peak_rss_mib() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      const long value = std::stol(item, &used);
      if (used != item.size() || value < 0 || value > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(value));
    } catch (const std::exception&) {
      return make_error(ErrorCode::kInvalidArgument, "--ids: '" + item + "' is not a token id");
    }
  }
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "--ids: no token ids");
  return ids;
}

struct QuantizeArgs {
  std::string input, output, weight_type = "quint8";
  bool per_channel = false;
};

int onnx_quantize(const QuantizeArgs& a) {
  auto type = onnx::parse_weight_type(a.weight_type);
  if (!type) return report(type.error());
  onnx::QuantizeOptions options;
  options.weight_type = *type;
  options.per_channel = a.per_channel;
  auto result = onnx::quantize_dynamic(a.input, a.output, options);
  if (!result) return report(result.error());
  std::fprintf(stderr,
               "edgelm: %s -> %s: %lld MatMul/Gemm weights quantized (%s%s), %lld left float; %.2f "
               "MiB -> %.2f MiB\n",
               a.input.c_str(), a.output.c_str(), static_cast<long long>(result->quantized),
               a.weight_type.c_str(), a.per_channel ? ", per channel" : "",
               static_cast<long long>(result->skipped), result->bytes_in / 1048576.0,
               result->bytes_out / 1048576.0);
  return 0;
}

struct RunArgs {
  std::string model, vocab, prompt, ids, config_path;
  int n_predict = 32;
  int threads = 0;
  bool no_mmap = false;
  SamplingOptions sampling;
};

// Greedy/sampled generation over token ids; prints pieces (tokenizer) or ids.
int generate(onnx::CausalLm& lm, const tokenizer::Tokenizer* tok, std::vector<int32_t> ids,
             int n_predict, const runtime::SamplerParams& params) {
  if (auto ok = params.validate(); !ok) return report(ok.error());
  runtime::Sampler sampler(params);
  for (int32_t id : ids) (void)sampler.accept(id, false);
  const auto start = std::chrono::steady_clock::now();
  int produced = 0;
  for (; produced < n_predict; ++produced) {
    auto logits = lm.next_logits(ids);
    if (!logits) return report(logits.error());
    auto next = sampler.sample(*logits);
    if (!next) return report(next.error());
    if (tok && (*next == tok->eos() || *next == tok->eot())) break;
    (void)sampler.accept(*next);
    ids.push_back(*next);
    if (tok) {
      const std::string piece = tok->token_to_piece(*next, false);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
    } else {
      std::printf("%d ", *next);
    }
    std::fflush(stdout);
  }
  std::printf("\n");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(
      stderr,
      "edgelm: %d tokens in %.2f s (%.1f tok/s), load %.1f ms, %lld nodes scheduled of %lld\n",
      produced, seconds, produced / std::max(seconds, 1e-9), lm.session().stats().load_ms,
      static_cast<long long>(lm.session().stats().nodes_scheduled),
      static_cast<long long>(lm.session().stats().nodes_in_file));
  return 0;
}

int onnx_run(const RunArgs& a) {
  auto options = session_options(a.config_path, a.threads, a.no_mmap);
  if (!options) return report(options.error());
  Config config;
  config.threads = options->threads;
  config.use_mmap = options->use_mmap;
  config.quant_bits = options->quant_bits;
  if (a.ids.empty())
    return run_onnx_causal_lm(a.model, a.vocab, a.prompt, a.n_predict, a.sampling.params, config);
  auto ids = parse_ids(a.ids);
  if (!ids) return report(ids.error());
  auto lm = onnx::CausalLm::open(a.model, *options);
  if (!lm) return report(lm.error());
  return generate(**lm, nullptr, *ids, a.n_predict, a.sampling.params);
}

struct BenchArgs {
  std::string model, config_path;
  int seq = 32, iterations = 20, threads = 1;
  bool no_mmap = false;
};

// One JSON line: load time, forward latency percentiles over `iterations` runs, peak RSS.
int onnx_bench(const BenchArgs& a) {
  auto options = session_options(a.config_path, a.threads, a.no_mmap);
  if (!options) return report(options.error());
  const auto load_start = std::chrono::steady_clock::now();
  auto lm = onnx::CausalLm::open(a.model, *options);
  if (!lm) return report(lm.error());
  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
          .count();
  std::vector<int32_t> ids(static_cast<size_t>(std::max(1, a.seq)));
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<int32_t>((i * 7 + 3) % std::max<int64_t>((*lm)->n_vocab(), 1));
  std::vector<double> ms;
  for (int i = 0; i < std::max(1, a.iterations) + 1; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto logits = (*lm)->next_logits(ids);
    if (!logits) return report(logits.error());
    if (i > 0)
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * (ms.size() - 1) + 0.5))];
  };
  std::printf(
      "{\"runtime\":\"edgelm\",\"threads\":%d,\"seq\":%d,\"load_ms\":%.2f,\"p50_ms\":%.3f,\"p95_"
      "ms\":%.3f,"
      "\"p99_ms\":%.3f,\"peak_rss_mib\":%.1f}\n",
      options->threads, a.seq, load_ms, pct(0.5), pct(0.95), pct(0.99), peak_rss_mib());
  return 0;
}

// A GGUF vocabulary, or a Hugging Face tokenizer.json (with tokenizer_config.json beside it when
// present: special tokens, add_bos_token).
Result<std::unique_ptr<tokenizer::Tokenizer>> load_tokenizer(const std::string& path) {
  const std::filesystem::path file(path);
  if (file.extension() != ".json") {
    EDGELM_TRY(format::GgufFile vocab, format::GgufFile::open(file));
    return tokenizer::Tokenizer::from_gguf(vocab);
  }
  EDGELM_TRY(std::string json, read_file(path, "tokenizer.json"));
  std::string config;
  const auto config_path = file.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    EDGELM_TRY(config, read_file(config_path.string(), "tokenizer_config.json"));
  }
  return tokenizer::Tokenizer::from_hf_json(json, config);
}

}  // namespace

int run_onnx_causal_lm(const std::string& model_path, const std::string& vocab_path,
                       const std::string& prompt, int n_predict,
                       const runtime::SamplerParams& sampling, const Config& config) {
  auto options = onnx::SessionOptions::from_config(config);
  if (!options) return report(options.error());
  if (vocab_path.empty()) {
    return report(
        make_error(ErrorCode::kInvalidArgument,
                   "an ONNX model needs --vocab FILE.gguf or tokenizer.json for its tokenizer"));
  }
  auto tok = load_tokenizer(vocab_path);
  if (!tok) return report(tok.error());
  auto ids = (*tok)->encode(prompt, true, false);
  if (!ids) return report(ids.error());
  auto lm = onnx::CausalLm::open(model_path, *options);
  if (!lm) return report(lm.error());
  if ((*lm)->n_vocab() > 0 && (*lm)->n_vocab() < (*tok)->n_vocab()) {
    return report(make_error(ErrorCode::kInvalidArgument, "the tokenizer has " +
                                                              std::to_string((*tok)->n_vocab()) +
                                                              " tokens, the model's logits " +
                                                              std::to_string((*lm)->n_vocab())));
  }
  return generate(**lm, tok->get(), *ids, n_predict, sampling);
}

void register_onnx(CLI::App& app, int& exit_code) {
  auto q = std::make_shared<QuantizeArgs>();
  CLI::App* quantize =
      app.add_subcommand("onnx-quantize",
                         "8-bit dynamic quantization of an ONNX model's MatMul/Gemm "
                         "weights (standard operators, runs in ONNX Runtime)");
  quantize->add_option("input", q->input, "input .onnx")->required();
  quantize->add_option("output", q->output, "output .onnx")->required();
  quantize->add_option("--weight-type", q->weight_type, "quint8 | qint8")->capture_default_str();
  quantize->add_flag("--per-channel", q->per_channel, "one scale per output column");
  quantize->callback([q, &exit_code] { exit_code = onnx_quantize(*q); });

  auto r = std::make_shared<RunArgs>();
  CLI::App* run =
      app.add_subcommand("onnx-run", "generate with an ONNX causal LM (input_ids -> logits)");
  run->add_option("model", r->model, "model .onnx")->required();
  run->add_option("--vocab", r->vocab, "GGUF vocabulary or tokenizer.json of the model");
  run->add_option("-p,--prompt", r->prompt, "prompt text");
  run->add_option("--ids", r->ids, "prompt as comma-separated token ids (no tokenizer needed)");
  run->add_option("-n,--n-predict", r->n_predict, "tokens to generate")->capture_default_str();
  run->add_option("-t,--threads", r->threads, "threads (0: config or all cores)");
  run->add_flag("--no-mmap", r->no_mmap, "read the model instead of mapping it");
  add_config_option(*run, r->config_path);
  r->sampling.add_to(*run);
  run->callback([r, &exit_code] { exit_code = onnx_run(*r); });

  auto b = std::make_shared<BenchArgs>();
  CLI::App* bench = app.add_subcommand("onnx-bench",
                                       "forward-pass latency percentiles, load time and peak RSS "
                                       "of an ONNX causal LM (one JSON line)");
  bench->add_option("model", b->model, "model .onnx")->required();
  bench->add_option("--seq", b->seq, "tokens per forward pass")->capture_default_str();
  bench->add_option("--iterations", b->iterations, "timed forward passes")->capture_default_str();
  bench->add_option("-t,--threads", b->threads, "threads")->capture_default_str();
  bench->add_flag("--no-mmap", b->no_mmap, "read the model instead of mapping it");
  add_config_option(*bench, b->config_path);
  bench->callback([b, &exit_code] { exit_code = onnx_bench(*b); });
}

}  // namespace edgelm::cli
