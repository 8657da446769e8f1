// The scheduler against independent oracles: the numpy reference decode of stories260K (greedy
// tokens from BOS), runtime::Session (one sequence through Context::decode, not the batch path),
// and tests/reference/forward.py's hidden states for embeddings.
#include "edgelm/serve/scheduler.h"

#include <cmath>

#include "edgelm/session.h"
#include "serve/serve_test_util.h"

namespace edgelm::serve::test {
namespace {

using namespace std::chrono_literals;

SchedulerOptions options(int32_t slots, int32_t queue = 16, int32_t ctx = 512) {
  SchedulerOptions o;
  o.n_slots = slots;
  o.max_queue = queue;
  o.n_ctx = ctx;
  o.n_threads = 1;
  return o;
}

GenerationSpec greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationSpec s;
  s.prompt = std::move(prompt);
  s.max_tokens = max_tokens;
  s.sampling.temperature = 0.0f;
  return s;
}

struct Finished {
  GenerationDelta delta;
  GenerationOutcome outcome;
};

Finished run_to_end(const std::shared_ptr<GenerationJob>& job) {
  Finished f;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (!job->done() && std::chrono::steady_clock::now() < until) job->wait(f.delta, 100ms);
  job->wait(f.delta, 0ms);
  EXPECT_TRUE(job->done()) << "job did not finish";
  f.outcome = job->outcome();
  return f;
}

std::vector<int32_t> ref_prefix(size_t n) {
  const auto& t = reference_decode().tokens;
  return std::vector<int32_t>(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n));
}

std::vector<int32_t> ref_slice(size_t begin, size_t n) {
  const auto& t = reference_decode().tokens;
  return std::vector<int32_t>(t.begin() + static_cast<std::ptrdiff_t>(begin),
                              t.begin() + static_cast<std::ptrdiff_t>(begin + n));
}

// Prompts are prefixes of the reference decode, so greedy decoding must continue it exactly.
TEST(Scheduler, GreedyMatchesReferenceAloneAndBatched) {
  const std::vector<size_t> prefixes = {1, 2, 5, 9, 14, 20, 33, 47};
  const int32_t n = 40;
  auto scheduler = Scheduler::create(stories_engine(), options(4));
  ASSERT_TRUE(scheduler) << scheduler.error().to_string();

  std::vector<std::vector<int32_t>> alone;
  for (size_t p : prefixes) {
    auto job = (*scheduler)->submit(greedy(ref_prefix(p), n));
    ASSERT_TRUE(job) << job.error().to_string();
    Finished f = run_to_end(*job);
    EXPECT_EQ(f.delta.tokens, ref_slice(p, n)) << "prefix " << p;
    EXPECT_EQ(f.delta.text, reference_decode().text(p, n)) << "prefix " << p;
    EXPECT_EQ(f.outcome.finish, runtime::FinishReason::kLength);
    EXPECT_EQ(f.outcome.n_generated, n);
    EXPECT_EQ(f.outcome.n_prompt, static_cast<int32_t>(p));
    alone.push_back(f.delta.tokens);
  }
  // All at once: four run together and four wait, joining as slots free up.
  std::vector<std::shared_ptr<GenerationJob>> jobs;
  for (size_t p : prefixes) {
    auto job = (*scheduler)->submit(greedy(ref_prefix(p), n));
    ASSERT_TRUE(job) << job.error().to_string();
    jobs.push_back(*job);
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    Finished f = run_to_end(jobs[i]);
    EXPECT_EQ(f.delta.tokens, alone[i]) << "prefix " << prefixes[i] << " differs when batched";
  }
}

// Session (Context::decode, one sequence) is the oracle for sampling with a seed, penalties and
// a context that fills up.
TEST(Scheduler, SampledOutputEqualsSessionWithSameSeed) {
  auto scheduler = Scheduler::create(stories_engine(), options(3, 16, 64));
  ASSERT_TRUE(scheduler) << scheduler.error().to_string();
  Config config;
  config.threads = 1;
  config.ctx = 64;
  auto engine = runtime::Engine::load(stories_path(), config);
  ASSERT_TRUE(engine);
  auto session = runtime::Session::create(**engine);
  ASSERT_TRUE(session);

  std::vector<std::shared_ptr<GenerationJob>> jobs;
  std::vector<runtime::GenerateResult> expected;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    GenerationSpec spec;
    spec.prompt = ref_prefix(3 + seed);
    spec.max_tokens = seed % 2 == 0 ? -1 : 30;  // -1 runs until the 64-token context is full
    spec.sampling.temperature = 0.9f;
    spec.sampling.top_k = 20;
    spec.sampling.top_p = 0.9f;
    spec.sampling.min_p = 0.0f;
    spec.sampling.frequency_penalty = 0.3f;
    spec.sampling.seed = seed;
    runtime::GenerateOptions go;
    go.max_tokens = spec.max_tokens;
    go.sampling = spec.sampling;
    (*session)->reset();
    auto r = (*session)->generate(spec.prompt, go);
    ASSERT_TRUE(r) << r.error().to_string();
    expected.push_back(*r);
    auto job = (*scheduler)->submit(spec);
    ASSERT_TRUE(job);
    jobs.push_back(*job);
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    Finished f = run_to_end(jobs[i]);
    EXPECT_EQ(f.delta.tokens, expected[i].tokens) << "seed " << i + 1;
    EXPECT_EQ(f.delta.text, expected[i].text) << "seed " << i + 1;
    EXPECT_EQ(f.outcome.finish, expected[i].finish) << "seed " << i + 1;
  }
}

TEST(Scheduler, StopStringEndsGenerationWithoutIt) {
  auto scheduler = Scheduler::create(stories_engine(), options(2));
  ASSERT_TRUE(scheduler);
  const std::string full = reference_decode().text(1, 60);
  const std::string stop = " park";  // "... to play outside in the park."
  const size_t at = full.find(stop);
  ASSERT_NE(at, std::string::npos);
  GenerationSpec spec = greedy(ref_prefix(1), 60);
  spec.stop = {stop, "never appears"};
  auto job = (*scheduler)->submit(spec);
  ASSERT_TRUE(job);
  Finished f = run_to_end(*job);
  EXPECT_EQ(f.delta.text, full.substr(0, at));
  EXPECT_EQ(f.outcome.finish, runtime::FinishReason::kStop);
}

TEST(Scheduler, PrefixOfAFinishedRequestIsReused) {
  auto scheduler = Scheduler::create(stories_engine(), options(2));
  ASSERT_TRUE(scheduler);
  auto first = (*scheduler)->submit(greedy(ref_prefix(30), 5));
  ASSERT_TRUE(first);
  run_to_end(*first);
  auto second = (*scheduler)->submit(greedy(ref_prefix(40), 10));
  ASSERT_TRUE(second);
  Finished f = run_to_end(*second);
  EXPECT_GE(f.outcome.n_prompt_cached, 30);
  EXPECT_EQ(f.delta.tokens, ref_slice(40, 10));
}

TEST(Scheduler, CancelFreesTheSlot) {
  auto scheduler = Scheduler::create(stories_engine(), options(1, 4));
  ASSERT_TRUE(scheduler);
  auto endless = (*scheduler)->submit(greedy(ref_prefix(1), -1));
  ASSERT_TRUE(endless);
  auto queued = (*scheduler)->submit(greedy(ref_prefix(5), 8));
  ASSERT_TRUE(queued);
  GenerationDelta some;
  ASSERT_TRUE((*endless)->wait(some, 10s));
  (*endless)->cancel();
  Finished cancelled = run_to_end(*endless);
  EXPECT_EQ(cancelled.outcome.finish, runtime::FinishReason::kCancelled);
  EXPECT_FALSE(cancelled.outcome.error.has_value());
  Finished next = run_to_end(*queued);
  EXPECT_EQ(next.delta.tokens, ref_slice(5, 8));
  EXPECT_EQ((*scheduler)->stats().active_slots, 0);
}

TEST(Scheduler, FullQueueAndShutdownAreRefused) {
  auto scheduler = Scheduler::create(stories_engine(), options(1, 1));
  ASSERT_TRUE(scheduler);
  auto a = (*scheduler)->submit(greedy(ref_prefix(1), -1));
  auto b = (*scheduler)->submit(greedy(ref_prefix(1), -1));
  auto c = (*scheduler)->submit(greedy(ref_prefix(1), -1));
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kOutOfRange);

  (*scheduler)->begin_shutdown();
  auto d = (*scheduler)->submit(greedy(ref_prefix(1), 4));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::kCancelled);
  EXPECT_FALSE((*scheduler)->wait_idle(std::chrono::steady_clock::now() + 50ms));
  (*scheduler)->cancel_all();
  for (auto* job : {&*a, &*b}) {
    Finished f = run_to_end(*job);
    ASSERT_TRUE(f.outcome.error.has_value());
    EXPECT_EQ(f.outcome.error->code, ErrorCode::kCancelled);
  }
  EXPECT_TRUE((*scheduler)->wait_idle(std::chrono::steady_clock::now() + 5s));
}

TEST(Scheduler, RejectsBadPrompts) {
  auto scheduler = Scheduler::create(stories_engine(), options(1, 1, 32));
  ASSERT_TRUE(scheduler);
  auto empty = (*scheduler)->submit(greedy({}, 4));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  auto out_of_vocab = (*scheduler)->submit(greedy({1, 512}, 4));
  ASSERT_FALSE(out_of_vocab);
  EXPECT_EQ(out_of_vocab.error().code, ErrorCode::kInvalidArgument);
  auto too_long = (*scheduler)->submit(greedy(ref_prefix(33), 4));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, ErrorCode::kContextFull);
  GenerationSpec bad_bias = greedy(ref_prefix(2), 4);
  bad_bias.sampling.logit_bias = {{9999, 1.0f}};
  auto biased = (*scheduler)->submit(bad_bias);
  ASSERT_FALSE(biased);
  EXPECT_EQ(biased.error().code, ErrorCode::kInvalidArgument);
}

// Constrained decoding through the scheduler: every seed yields a JSON object.
TEST(Scheduler, JsonObjectGrammarAlwaysParses) {
  auto scheduler = Scheduler::create(stories_engine(), options(4));
  ASSERT_TRUE(scheduler);
  auto grammar = runtime::Grammar::parse(runtime::json_object_gbnf());
  ASSERT_TRUE(grammar) << grammar.error().to_string();
  std::vector<std::shared_ptr<GenerationJob>> jobs;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    GenerationSpec spec;
    spec.prompt = ref_prefix(4);
    spec.max_tokens = 400;
    spec.sampling.temperature = 1.0f;
    spec.sampling.top_k = 0;
    spec.sampling.top_p = 1.0f;
    spec.sampling.min_p = 0.0f;
    spec.sampling.seed = seed;
    spec.grammar = *grammar;
    auto job = (*scheduler)->submit(spec);
    ASSERT_TRUE(job);
    jobs.push_back(*job);
  }
  for (auto& job : jobs) {
    Finished f = run_to_end(job);
    if (f.outcome.finish != runtime::FinishReason::kStop) continue;  // ran out of tokens mid-object
    const json parsed = json::parse(f.delta.text, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << f.delta.text;
    EXPECT_TRUE(parsed.is_object()) << f.delta.text;
  }
}

// Embeddings: mean of forward.py's final-normed hidden states, L2-normalized.
TEST(Scheduler, EmbeddingMatchesNumpyReference) {
  auto scheduler = Scheduler::create(stories_engine(), options(1));
  ASSERT_TRUE(scheduler);
  const std::vector<int32_t> tokens = ref_prefix(12);
  auto embedding = (*scheduler)->embed(tokens);
  ASSERT_TRUE(embedding) << embedding.error().to_string();

  const fs::path dir =
      fs::temp_directory_path() / ("edgelm-serve-embed-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const json jobs = json::array({{{"model", stories_path().string()},
                                  {"n_ctx", 64},
                                  {"out", (dir / "logits.bin").string()},
                                  {"hidden_out", (dir / "hidden.bin").string()},
                                  {"kv_type", "f16"},  // the default KV cache rounds K and V
                                  {"ops", json::array({json::array({"decode", tokens})})}}});
  std::ofstream(dir / "jobs.json") << jobs.dump();
  const auto r = edgelm::test::run_command(
      edgelm::test::python3() + " " +
      edgelm::test::shell_quote(
          (edgelm::test::source_dir() / "tests" / "reference" / "forward.py").string()) +
      " " + edgelm::test::shell_quote((dir / "jobs.json").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir / "hidden.bin", std::ios::binary);
  const int n_embd = stories_engine().model().hparams().n_embd;
  std::vector<float> hidden(tokens.size() * static_cast<size_t>(n_embd));
  in.read(reinterpret_cast<char*>(hidden.data()),
          static_cast<std::streamsize>(hidden.size() * sizeof(float)));
  ASSERT_TRUE(in.good());
  fs::remove_all(dir);

  std::vector<double> mean(static_cast<size_t>(n_embd), 0.0);
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (int i = 0; i < n_embd; ++i)
      mean[static_cast<size_t>(i)] += hidden[t * n_embd + i] / tokens.size();
  }
  double norm = 0;
  for (double v : mean) norm += v * v;
  norm = std::sqrt(norm);
  ASSERT_EQ(embedding->size(), static_cast<size_t>(n_embd));
  for (int i = 0; i < n_embd; ++i) {
    EXPECT_NEAR((*embedding)[static_cast<size_t>(i)], mean[static_cast<size_t>(i)] / norm, 1e-4)
        << "dim " << i;
  }
}

}  // namespace
}  // namespace edgelm::serve::test
