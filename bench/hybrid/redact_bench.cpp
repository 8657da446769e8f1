// Redaction throughput (bytes/s on PII-dense and on plain text) and what one chat request pays
// for it on the device (redacting its messages, restoring the answer's placeholders), with the
// default policy. bench/hybrid/run reads the JSON output (--benchmark_format=json).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "edgelm/hybrid/evaluation.h"
#include "edgelm/hybrid/redactor.h"

namespace {

using namespace edgelm::hybrid;
using Clock = std::chrono::steady_clock;

const Redactor& redactor() {
  static const auto instance = std::move(*Redactor::create(RedactionPolicy{}));
  return *instance;
}

// Phone numbers in national format for one region instead of the default four: libphonenumber's
// matcher runs once per region and is most of the time on text with many digits.
const Redactor& one_region_redactor() {
  static const auto instance = [] {
    RedactionPolicy policy;
    policy.phone_regions = {"US"};
    return std::move(*Redactor::create(policy));
  }();
  return *instance;
}

std::string labeled_corpus() {
  auto examples =
      load_labeled_jsonl(std::string(EDGELM_SOURCE_DIR) + "/tests/hybrid/data/pii_generated.jsonl");
  std::string corpus;
  if (examples) {
    for (const auto& e : *examples) corpus += e.text + "\n";
  }
  return corpus;
}

// Throughput over `text`, with the entity density so "PII-dense" and "plain" are quantified.
void redact_throughput(benchmark::State& state, const std::string& text,
                       const Redactor& with = redactor()) {
  if (text.empty()) {
    state.SkipWithError("no input text (tests/hybrid/data/pii_generated.jsonl missing?)");
    return;
  }
  size_t entities = 0;
  for (auto _ : state) {
    Vault vault;
    RedactionResult result = with.redact(text, vault);
    entities = result.entities.size();
    benchmark::DoNotOptimize(result);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["input_bytes"] = static_cast<double>(text.size());
  state.counters["entities_per_kib"] =
      static_cast<double>(entities) * 1024.0 / static_cast<double>(text.size());
}

void BM_RedactCorpus(benchmark::State& state) {
  static const std::string corpus = labeled_corpus();
  redact_throughput(state, corpus);
}
BENCHMARK(BM_RedactCorpus)->Unit(benchmark::kMillisecond);

void BM_RedactCorpusOnePhoneRegion(benchmark::State& state) {
  static const std::string corpus = labeled_corpus();
  redact_throughput(state, corpus, one_region_redactor());
}
BENCHMARK(BM_RedactCorpusOnePhoneRegion)->Unit(benchmark::kMillisecond);

void BM_RedactPlainProse(benchmark::State& state) {
  std::string prose;
  while (prose.size() < 64 * 1024) {
    prose +=
        "The committee reviewed the quarterly figures and agreed to revisit the plan after the "
        "holidays, once the new process has been tested with a few volunteers. ";
  }
  redact_throughput(state, prose);
}
BENCHMARK(BM_RedactPlainProse)->Unit(benchmark::kMillisecond);

void BM_RedactChatMessage(benchmark::State& state) {
  const std::string message =
      "Hi, I'm Maria Garcia. Please move my appointment with Dr. Okonkwo from March 3, 2024 to the "
      "following week. You can reach me at maria.garcia@example.com or +1 415 867 5309, and the "
      "invoice should go to 742 Evergreen Terrace, Springfield, OR 97403. My card is 4111 1111 "
      "1111 "
      "1111 and the refund can go to DE89 3704 0044 0532 0130 00. I usually connect from "
      "203.0.113.7 and I work for Initech LLC in Lisbon. Thanks a lot, and sorry for the short "
      "notice! Let me know if anything else is needed from my side before Friday.";
  for (auto _ : state) {
    Vault vault;
    benchmark::DoNotOptimize(redactor().redact(message, vault));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * message.size()));
}
BENCHMARK(BM_RedactChatMessage)->Unit(benchmark::kMicrosecond);

// Nearest-rank percentile of `samples` (sorted in place); 0 for none.
double percentile(std::vector<double>& samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(samples.size()) + 0.5);
  return samples[std::clamp<size_t>(rank, 1, samples.size()) - 1];
}

// What the router adds to one typical chat request (a system prompt and a user message, ~470
// bytes, with a name, a date, a phone number, an email and an address): redacting both messages
// into a fresh vault, then restoring an answer that mentions every placeholder. Each iteration is
// timed on its own, so the counters give the p50/p95 a request pays, not only the mean.
void BM_ChatRequestRoundTrip(benchmark::State& state) {
  const std::vector<std::string> messages = {
      "You are the booking assistant of a small clinic. Answer briefly and politely, and never "
      "ask for more personal data than needed.",
      "Hello, this is Maria Garcia. Could you move my appointment with Dr. Okonkwo from March 3, "
      "2024 to the following Tuesday? If that is not possible, call me on +1 415 867 5309 or "
      "write to maria.garcia@example.com. My address changed to 742 Evergreen Terrace, "
      "Springfield, OR 97403, please update it. Thanks!"};
  size_t request_bytes = 0;
  for (const std::string& m : messages) request_bytes += m.size();
  // The answer an upstream would give to the redacted request: it names every placeholder.
  std::string answer = "Of course. I have noted the following details: ";
  {
    Vault scratch;
    for (const std::string& m : messages) (void)redactor().redact(m, scratch);
    for (const Vault::Entry& e : scratch.entries()) answer += e.placeholder + "; ";
    answer +=
        "and the appointment is moved to next Tuesday at the same time. A confirmation will "
        "follow, and you can reply to it if anything is wrong.";
  }

  std::vector<double> redact_us, restore_us, total_us;
  size_t entities = 0;
  for (auto _ : state) {
    const auto start = Clock::now();
    Vault vault;
    entities = 0;
    for (const std::string& m : messages) {
      RedactionResult result = redactor().redact(m, vault);
      entities += result.entities.size();
      benchmark::DoNotOptimize(result);
    }
    const auto redacted = Clock::now();
    std::string restored = vault.restore(answer);
    benchmark::DoNotOptimize(restored);
    const auto end = Clock::now();
    redact_us.push_back(std::chrono::duration<double, std::micro>(redacted - start).count());
    restore_us.push_back(std::chrono::duration<double, std::micro>(end - redacted).count());
    total_us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * request_bytes));
  state.counters["request_bytes"] = static_cast<double>(request_bytes);
  state.counters["answer_bytes"] = static_cast<double>(answer.size());
  state.counters["entities"] = static_cast<double>(entities);
  state.counters["redact_p50_us"] = percentile(redact_us, 50);
  state.counters["redact_p95_us"] = percentile(redact_us, 95);
  state.counters["restore_p50_us"] = percentile(restore_us, 50);
  state.counters["restore_p95_us"] = percentile(restore_us, 95);
  state.counters["total_p50_us"] = percentile(total_us, 50);
  state.counters["total_p95_us"] = percentile(total_us, 95);
}
BENCHMARK(BM_ChatRequestRoundTrip)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
