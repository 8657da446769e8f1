// Redaction throughput (bytes/s over the labeled set's texts) and the latency one chat request
// pays for it (a ~600-byte user message), with the default policy.
#include <benchmark/benchmark.h>

#include <string>

#include "edgelm/hybrid/evaluation.h"
#include "edgelm/hybrid/redactor.h"

namespace {

using namespace edgelm::hybrid;

const Redactor& redactor() {
  static const auto instance = std::move(*Redactor::create(RedactionPolicy{}));
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

void BM_RedactCorpus(benchmark::State& state) {
  const std::string corpus = labeled_corpus();
  for (auto _ : state) {
    Vault vault;
    benchmark::DoNotOptimize(redactor().redact(corpus, vault));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.size()));
}
BENCHMARK(BM_RedactCorpus)->Unit(benchmark::kMillisecond);

void BM_RedactPlainProse(benchmark::State& state) {
  std::string prose;
  while (prose.size() < 64 * 1024) {
    prose +=
        "The committee reviewed the quarterly figures and agreed to revisit the plan after the "
        "holidays, once the new process has been tested with a few volunteers. ";
  }
  for (auto _ : state) {
    Vault vault;
    benchmark::DoNotOptimize(redactor().redact(prose, vault));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * prose.size()));
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

}  // namespace

BENCHMARK_MAIN();
