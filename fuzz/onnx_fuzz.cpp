// libFuzzer target for the ONNX loader: protobuf decoding, validation, planning and constant
// folding (which runs operators on the file's constants) of arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "edgelm/onnx/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgelm::onnx::SessionOptions options;
  options.threads = 1;
  options.max_tensor_bytes = uint64_t{1}
                             << 24;  // folding may not allocate more than this per value
  auto session = edgelm::onnx::Session::from_bytes(std::span<const uint8_t>(data, size), options);
  (void)session;
  return 0;
}
