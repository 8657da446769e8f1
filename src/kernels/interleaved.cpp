#include "kernels/interleaved.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/kernel_set.h"

namespace edgelm::kernels {
namespace interleaved {
namespace {

constexpr int64_t kBlockElements = 32;
constexpr int64_t kScaleOffset = 0;  // both block types start with their f16 scale
constexpr int64_t kQuantOffset = 2;

int64_t blocks_per_row(const MatrixView& w) {
  return w.cols / kBlockElements;
}

// The 4 quant bytes of a row-major block that register k of its interleaved block holds.
constexpr int64_t quant_dwords(TensorType type) {
  return type == TensorType::kQ8_0 ? 8 : 4;
}

// q8_0 quants are stored + 128 (a flip of the top bit turns int8 into uint8 + 128).
constexpr uint8_t stored_bias(TensorType type) {
  return type == TensorType::kQ8_0 ? 0x80 : 0x00;
}

}  // namespace

bool can_hold(const MatrixView& w) {
  return w.layout == WeightLayout::kRowMajor &&
         (w.type == TensorType::kQ8_0 || w.type == TensorType::kQ4_0) && w.rows > 0 &&
         w.rows % kGroupRows == 0 && w.cols > 0 && w.cols % kBlockElements == 0;
}

void pack(const MatrixView& w, int64_t group_begin, int64_t group_end, uint8_t* dst) {
  const int64_t n_blocks = blocks_per_row(w);
  const int64_t dwords = quant_dwords(w.type);
  const int64_t block_bytes = static_cast<int64_t>(w.row_bytes) / n_blocks;
  const uint32_t bias = stored_bias(w.type) * 0x01010101u;
  for (int64_t g = group_begin; g < group_end; ++g) {
    uint8_t* group = dst + g * group_bytes(w.type, n_blocks);
    uint8_t* scales = group + n_blocks * quant_bytes(w.type);
    for (int i = 0; i < kGroupRows; ++i) {
      const uint8_t* row = w.data + (g * kGroupRows + i) * static_cast<int64_t>(w.row_bytes);
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* block = row + b * block_bytes;
        std::memcpy(scales + b * kScaleBytes + 2 * i, block + kScaleOffset, 2);
        uint8_t* quants = group + b * quant_bytes(w.type) + 4 * i;
        for (int64_t k = 0; k < dwords; ++k) {
          uint32_t four;
          std::memcpy(&four, block + kQuantOffset + 4 * k, 4);
          four ^= bias;
          std::memcpy(quants + k * 64, &four, 4);
        }
      }
    }
    // Padding is never read; zero it so that the copy does not carry stale heap bytes.
    const int64_t used = n_blocks * (quant_bytes(w.type) + kScaleBytes);
    std::memset(group + used, 0, static_cast<size_t>(group_bytes(w.type, n_blocks) - used));
  }
}

void unpack_row(const MatrixView& w, int64_t row, uint8_t* dst) {
  const int64_t n_blocks = blocks_per_row(w);
  const int64_t dwords = quant_dwords(w.type);
  const int64_t block_bytes = static_cast<int64_t>(w.row_bytes) / n_blocks;
  const uint8_t bias = stored_bias(w.type);
  const uint8_t* group = w.data + row / kGroupRows * group_bytes(w.type, n_blocks);
  const uint8_t* scales = group + n_blocks * quant_bytes(w.type);
  const int64_t i = row % kGroupRows;
  for (int64_t b = 0; b < n_blocks; ++b) {
    uint8_t* block = dst + b * block_bytes;
    std::memcpy(block + kScaleOffset, scales + b * kScaleBytes + 2 * i, 2);
    const uint8_t* quants = group + b * quant_bytes(w.type);
    for (int64_t k = 0; k < dwords; ++k) {
      for (int j = 0; j < 4; ++j)
        block[kQuantOffset + 4 * k + j] = quants[k * 64 + 4 * i + j] ^ bias;
    }
  }
}

}  // namespace interleaved

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

void RepackedWeights::Free::operator()(uint8_t* p) const {
  ::operator delete(p, std::align_val_t(kHugePage));
}

RepackedWeights RepackedWeights::repack(const std::vector<MatrixView*>& matrices,
                                        const std::function<void(const MatrixView&)>& replaced) {
  RepackedWeights out;
  if (preferred_layout() != WeightLayout::kInterleaved16) return out;
  std::vector<std::pair<MatrixView*, uint64_t>> chosen;  // with each copy's offset
  uint64_t bytes = 0;
  for (MatrixView* m : matrices) {
    if (!interleaved::can_hold(*m)) continue;
    chosen.emplace_back(m, bytes);
    bytes += static_cast<uint64_t>(
        m->rows / interleaved::kGroupRows *
        interleaved::group_bytes(m->type, m->cols / interleaved::kBlockElements));
  }
  if (bytes == 0) return out;
  bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  auto* storage = static_cast<uint8_t*>(
      ::operator new(static_cast<size_t>(bytes), std::align_val_t(kHugePage), std::nothrow));
  if (storage == nullptr) return out;
#if defined(MADV_HUGEPAGE)
  (void)::madvise(storage, bytes, MADV_HUGEPAGE);  // a hint: without it, 4 KiB pages still work
#endif
  out.storage_.reset(storage);
  out.bytes_ = bytes;
  // The copy's fresh pages are zeroed by the OS as they are first written, which costs more than
  // the packing itself: all cores share the work, one matrix at a time, so that each source can
  // be given back before the next is read.
  const int n_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  for (auto [m, offset] : chosen) {
    const int64_t n_groups = m->rows / interleaved::kGroupRows;
    const int shares = n_groups >= 2 * n_threads ? n_threads : 1;  // small matrices: no threads
    auto pack_share = [m = m, offset = offset, storage, n_groups, shares](int i) {
      interleaved::pack(*m, n_groups * i / shares, n_groups * (i + 1) / shares, storage + offset);
    };
    std::vector<std::thread> helpers;
    for (int i = 1; i < shares; ++i) helpers.emplace_back(pack_share, i);
    pack_share(0);
    for (std::thread& t : helpers) t.join();
    if (replaced) replaced(*m);
    m->data = storage + offset;
    m->layout = WeightLayout::kInterleaved16;
  }
  return out;
}

}  // namespace edgelm::kernels
