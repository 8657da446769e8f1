// libFuzzer target for the GGUF reader: any input either fails with an error or yields a file whose
// every getter, tensor data span and description works, and which the writer re-encodes into a file
// that parses back to the same content.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "edgelm/gguf.h"
#include "edgelm/gguf_inspect.h"

namespace {

using edgelm::format::GgufFile;
using edgelm::format::GgufWriter;

void touch_getters(const GgufFile& f) {
  for (const auto& [key, value] : f.metadata()) {
    if (f.find(key) != &value) std::abort();
    (void)f.get_string(key);
    (void)f.get_uint(key);
    (void)f.get_int(key);
    (void)f.get_float(key);
    (void)f.get_bool(key);
    (void)f.get_array(key);
    (void)f.get_uint_or(key, 0);
  }
}

// Sums every byte of every tensor so ASan checks the whole span.
unsigned touch_tensors(const GgufFile& f) {
  unsigned sum = 0;
  for (const auto& t : f.tensors()) {
    if (f.find_tensor(t.name) != &t) std::abort();
    const auto data = f.tensor_data(t);
    if (data.size() != t.n_bytes) std::abort();
    for (uint8_t b : data) sum += b;
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = GgufFile::parse({data, size});
  if (!file.has_value()) {
    if (file.error().message.empty()) std::abort();
    return 0;
  }
  touch_getters(*file);
  volatile unsigned sink = touch_tensors(*file);
  (void)sink;
  (void)edgelm::format::describe_gguf(*file).dump();

  // Round trip: what we accepted, we can write, and the rewrite reads back identically.
  auto bytes = GgufWriter::from_file(*file).to_bytes();
  if (!bytes.has_value()) std::abort();
  auto again = GgufFile::parse(*bytes);
  if (!again.has_value()) std::abort();
  if (again->metadata().size() != file->metadata().size() ||
      again->tensors().size() != file->tensors().size()) {
    std::abort();
  }
  for (size_t i = 0; i < file->tensors().size(); ++i) {
    const auto a = file->tensor_data(file->tensors()[i]);
    const auto b = again->tensor_data(again->tensors()[i]);
    if (a.size() != b.size() || !std::equal(a.begin(), a.end(), b.begin())) std::abort();
  }
  auto third = GgufWriter::from_file(*again).to_bytes();
  if (!third.has_value() || *third != *bytes) std::abort();  // our own output is a fixed point
  return 0;
}
