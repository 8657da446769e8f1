// Runs ONNX models (opset 13-21, the operators PyTorch exports for transformer language models)
// on edgelm's kernels, in the spirit of onnxruntime.InferenceSession:
//
//   EDGELM_TRY(auto session, onnx::Session::open("model.onnx", onnx::SessionOptions{}));
//   EDGELM_TRY(auto ids, onnx::Tensor::from_int64({1, 3}, std::vector<int64_t>{1, 2, 3}));
//   EDGELM_TRY(auto outputs, session->run({"logits"}, {{"input_ids", ids}}));
//
// The file is untrusted: open() validates it completely (protobuf structure, opset, graph cycles,
// dangling names, duplicate definitions, data types, initializer sizes, external-data locations
// and ranges) and reports every unsupported operator by op type and node name before anything
// runs. External data files are memory-mapped read-only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "edgelm/config.h"
#include "edgelm/error.h"
#include "edgelm/onnx/tensor.h"

namespace edgelm::onnx {

struct SessionOptions {
  int threads = 1;       // kernel threads (the caller counts as one)
  bool use_mmap = true;  // map the model and its external data instead of reading them
  int quant_bits = 0;    // 0: float weights as stored; 8 / 4: MatMul weights become q8_0 / q4_0
  bool optimize = true;  // constant folding and fusion (off: run the graph node by node)
  uint64_t max_tensor_bytes = kDefaultMaxTensorBytes;  // larger intermediate values are errors

  // threads, use_mmap and quant_bits from the JSON config; provider must be the CPU one.
  static Result<SessionOptions> from_config(const Config& config);
};

// A graph input or output as declared in the file; dims < 0 are dynamic (named or unknown).
struct ValueInfo {
  std::string name;
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> shape;
};

struct SessionStats {
  int64_t nodes_in_file = 0;
  int64_t nodes_scheduled = 0;  // after constant folding and fusion
  int64_t folded_nodes = 0;     // nodes evaluated once at load
  int64_t fused_patterns = 0;   // MatMul(+Add), LayerNorm, RMSNorm, GELU groups replaced
  double load_ms = 0;
  uint64_t peak_arena_bytes = 0;      // largest sum of live intermediate buffers seen by run()
  uint64_t last_run_value_bytes = 0;  // bytes of all values the last run() computed
};

class Session {
 public:
  // Loads, validates and prepares a model; external data is looked up beside the file.
  static Result<std::unique_ptr<Session>> open(const std::filesystem::path& path,
                                               const SessionOptions& options);
  // The same for a model held in memory (external data is refused: there is no directory).
  // The bytes must outlive the session.
  static Result<std::unique_ptr<Session>> from_bytes(std::span<const uint8_t> bytes,
                                                     const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  const SessionStats& stats() const;

  // Evaluates the named outputs (empty: all graph outputs) from the feeds, which must cover
  // every graph input with its declared type and rank. Errors name the node and operator.
  // Not thread-safe: one run at a time per session.
  Result<std::vector<Tensor>> run(const std::vector<std::string>& output_names,
                                  const std::vector<std::pair<std::string, Tensor>>& feeds);

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgelm::onnx
