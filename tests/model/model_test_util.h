// Shared by the model tests: running the numpy reference (tests/reference/forward.py) and the
// C++ Context on the same script of decode / truncate / shift operations, and comparing logits.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "edgelm/model.h"

namespace edgelm::model::test {

namespace fs = std::filesystem;

struct Op {
  enum Kind { kDecode, kTruncate, kShift } kind = kDecode;
  std::vector<int32_t> tokens;  // kDecode
  int32_t a = 0;                // kTruncate: n_keep; kShift: n_keep
  int32_t b = 0;                // kShift: n_discard
  bool all_logits = true;       // kDecode in the C++ run; the reference always returns every row
};

inline Op decode(std::vector<int32_t> tokens, bool all_logits = true) {
  return Op{Op::kDecode, std::move(tokens), 0, 0, all_logits};
}
inline Op truncate_to(int32_t n_keep) {
  return Op{Op::kTruncate, {}, n_keep, 0, true};
}
inline Op shift(int32_t n_keep, int32_t n_discard) {
  return Op{Op::kShift, {}, n_keep, n_discard, true};
}

// A fresh directory under the build tree for one test's files.
// One directory per test process: CTest runs the tests of a suite as parallel processes, and a
// shared directory would be wiped and regenerated under another process's feet.
inline fs::path scratch_dir(const std::string& name) {
  const fs::path dir = edgelm::test::binary_dir() / "model_test" / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline std::string reference_script(const std::string& file) {
  return (edgelm::test::source_dir() / "tests" / "reference" / file).string();
}

// Runs a Python script from tests/reference; fails the test when it exits non-zero.
inline void run_python(const std::string& script, const std::string& args) {
  const std::string command = edgelm::test::python3() + " " + reference_script(script) + " " + args;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

inline std::string ops_json(const std::vector<Op>& ops) {
  std::string json = "[";
  for (const Op& op : ops) {
    if (json.size() > 1) json += ", ";
    if (op.kind == Op::kDecode) {
      json += "[\"decode\", [";
      for (size_t i = 0; i < op.tokens.size(); ++i) {
        json += (i ? ", " : "") + std::to_string(op.tokens[i]);
      }
      json += "]]";
    } else if (op.kind == Op::kTruncate) {
      json += "[\"truncate\", " + std::to_string(op.a) + "]";
    } else {
      json += "[\"shift\", " + std::to_string(op.a) + ", " + std::to_string(op.b) + "]";
    }
  }
  return json + "]";
}

struct ReferenceJob {
  fs::path model;
  int32_t n_ctx = 0;
  std::vector<Op> ops;
  fs::path out;
  fs::path hidden_out = {};  // set: also the final-normed hidden states, [n][n_embd]
  TensorType kv_type = TensorType::kF32;  // the cache whose rounding the reference reproduces
};

// Runs forward.py once for all jobs; each job's logits land in its `out` file (and hidden states
// in `hidden_out`).
inline void run_reference(const std::vector<ReferenceJob>& jobs, const fs::path& dir) {
  const fs::path jobs_path = dir / "jobs.json";
  {
    std::ofstream f(jobs_path);
    f << "[";
    for (size_t i = 0; i < jobs.size(); ++i) {
      f << (i ? ",\n" : "") << "{\"model\": \"" << jobs[i].model.string()
        << "\", \"n_ctx\": " << jobs[i].n_ctx << ", \"out\": \"" << jobs[i].out.string()
        << "\", \"kv_type\": \"" << tensor_type_name(jobs[i].kv_type)
        << "\", \"ops\": " << ops_json(jobs[i].ops);
      if (!jobs[i].hidden_out.empty())
        f << ", \"hidden_out\": \"" << jobs[i].hidden_out.string() << "\"";
      f << "}";
    }
    f << "]\n";
  }
  run_python("forward.py", jobs_path.string());
}

inline std::vector<float> read_floats(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  std::vector<float> values(bytes.size() / sizeof(float));
  std::copy_n(bytes.data(), values.size() * sizeof(float), reinterpret_cast<char*>(values.data()));
  return values;
}

// One row of logits from the C++ run and the index of the decoded token it belongs to (counting
// every token of every decode op of the script, as the reference output does).
struct LogitsRow {
  size_t token_index = 0;
  std::vector<float> logits;
};

// Runs the script on a fresh Context; op failures fail the test.
inline std::vector<LogitsRow> run_ops(const Model& model, const ContextOptions& options,
                                      const std::vector<Op>& ops) {
  std::vector<LogitsRow> rows;
  auto context = Context::create(model, options);
  EXPECT_TRUE(context.has_value()) << context.error().to_string();
  if (!context) return rows;
  const size_t n_vocab = static_cast<size_t>(model.hparams().n_vocab);
  size_t token_index = 0;
  for (const Op& op : ops) {
    if (op.kind == Op::kTruncate) {
      (*context)->truncate(op.a);
    } else if (op.kind == Op::kShift) {
      Status status = (*context)->shift(op.a, op.b);
      EXPECT_TRUE(status.has_value()) << status.error().to_string();
    } else {
      auto logits = (*context)->decode(op.tokens, op.all_logits);
      EXPECT_TRUE(logits.has_value()) << logits.error().to_string();
      if (!logits) return rows;
      const size_t n_rows = op.all_logits ? op.tokens.size() : 1;
      EXPECT_EQ(logits->size(), n_rows * n_vocab);
      const size_t first = token_index + op.tokens.size() - n_rows;
      for (size_t r = 0; r < n_rows; ++r) {
        rows.push_back({first + r, std::vector<float>(logits->begin() + r * n_vocab,
                                                      logits->begin() + (r + 1) * n_vocab)});
      }
      token_index += op.tokens.size();
    }
  }
  return rows;
}

// Largest |got - want| of a row relative to the row's largest |want|, over all rows.
inline double max_relative_error(const std::vector<LogitsRow>& rows,
                                 const std::vector<float>& reference, size_t n_vocab) {
  double worst = 0.0;
  for (const LogitsRow& row : rows) {
    EXPECT_LE((row.token_index + 1) * n_vocab, reference.size());
    if ((row.token_index + 1) * n_vocab > reference.size()) return INFINITY;
    const float* want = reference.data() + row.token_index * n_vocab;
    double scale = 0.0;
    double diff = 0.0;
    for (size_t i = 0; i < n_vocab; ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
      diff = std::max(diff, std::fabs(static_cast<double>(row.logits[i]) - want[i]));
      if (!std::isfinite(row.logits[i])) return INFINITY;
    }
    worst = std::max(worst, diff / std::max(scale, 1e-6));
  }
  return worst;
}

// Logits of a run with one KV cache type must be nearer the reference of that type than the other
// type's: the error against `own` at most half that against `other`.
inline void expect_closer_to_own_reference(const std::vector<LogitsRow>& rows,
                                           const std::vector<float>& own,
                                           const std::vector<float>& other, size_t n_vocab) {
  EXPECT_LT(2 * max_relative_error(rows, own, n_vocab), max_relative_error(rows, other, n_vocab));
}

// The script every model runs: a prompt in one call, single-token steps, a context shift,
// a truncation, and a last multi-token call that asks for the last token's logits only.
inline std::vector<Op> standard_script() {
  return {decode({1, 17, 250, 3, 99, 42, 7, 123, 200, 5, 64}),
          decode({8}, false),
          decode({77}, false),
          decode({150}, false),
          shift(2, 5),
          decode({33}, false),
          decode({34, 35}),
          truncate_to(4),
          decode({12, 13, 14}, false)};
}

}  // namespace edgelm::model::test
