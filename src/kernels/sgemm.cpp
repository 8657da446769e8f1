// Packing, CPU-path selection and threading of the float GEMM; the scalar path and the reference.
#include "edgelm/sgemm.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "edgelm/kernels.h"
#include "kernels/parallel.h"
#include "kernels/sgemm_internal.h"

namespace edgelm::kernels {
namespace {

constexpr int64_t kPanel = PackedMatrix::kPanelWidth;
constexpr size_t kAlignment = 64;  // one cache line: panel rows never straddle two

// The scalar path: the packed layout read element by element (also checks packing in the tests).
void scalar_panels(const float* a, int64_t m, int64_t lda, const PackedMatrix& b,
                   int64_t panel_begin, int64_t panel_end, const float* bias, float* c, int64_t ldc,
                   Activation activation) {
  for (int64_t p = panel_begin; p < panel_end; ++p) {
    const float* panel = b.panel(p);
    const int64_t cols = std::min(kPanel, b.n() - p * kPanel);
    for (int64_t i = 0; i < m; ++i) {
      float acc[kPanel];
      for (int64_t j = 0; j < cols; ++j) acc[j] = bias ? bias[p * kPanel + j] : 0.0f;
      for (int64_t r = 0; r < b.k(); ++r) {
        const float x = a[i * lda + r];
        for (int64_t j = 0; j < cols; ++j) acc[j] += x * panel[r * kPanel + j];
      }
      apply_activation_reference(activation, acc, cols);
      std::copy_n(acc, cols, c + i * ldc + p * kPanel);
    }
  }
}

int64_t scalar_row_granule() {
  return 4;
}

struct Targets {
  std::vector<SgemmTarget> list;  // SIMD targets best first, then "scalar"

  Targets() {
    // Build the kernel registry first: both pin Highway's chosen target while they enumerate.
    (void)available_cpu_paths();
    list = sgemm_targets();
    // The "avx512amx" path multiplies quantized prompt batches on AMX tiles; its float GEMM is
    // the AVX-512 VNNI one.
    const std::vector<std::string_view> paths = available_cpu_paths();
    if (std::find(paths.begin(), paths.end(), "avx512amx") != paths.end()) {
      for (size_t i = 0; i < list.size(); ++i) {
        if (list[i].name != "avx512vnni") continue;
        SgemmTarget with_amx = list[i];
        with_amx.name = "avx512amx";
        list.insert(list.begin() + static_cast<std::ptrdiff_t>(i), with_amx);
        break;
      }
    }
    SgemmTarget scalar;
    scalar.name = "scalar";
    scalar.panels = &scalar_panels;
    scalar.row_granule = &scalar_row_granule;
    scalar.activation = &apply_activation_reference;
    list.push_back(scalar);
  }
};

const SgemmTarget& active_target() {
  static const Targets targets;
  const std::string_view path = active_cpu_path();
  for (const SgemmTarget& t : targets.list) {
    if (t.name == path) return t;
  }
  return targets.list.front();
}

void fill_packed(const float* b, int64_t k, int64_t n, int64_t row_stride, int64_t col_stride,
                 float* dst) {
  const int64_t panels = (n + kPanel - 1) / kPanel;
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = dst + p * k * kPanel;
    const int64_t cols = std::min(kPanel, n - p * kPanel);
    for (int64_t r = 0; r < k; ++r) {
      const float* src = b + r * row_stride + p * kPanel * col_stride;
      float* row = panel + r * kPanel;
      if (col_stride == 1) {
        std::copy_n(src, cols, row);
      } else {
        for (int64_t j = 0; j < cols; ++j) row[j] = src[j * col_stride];
      }
      std::fill(row + cols, row + kPanel, 0.0f);
    }
  }
}

// Packed weights of 2 MiB and more go on transparent huge pages where the OS offers them: the
// GEMM streams them from memory once per call, and 4 KiB pages would add a page walk every 4 KiB.
constexpr size_t kHugePage = size_t{2} << 20;

struct AlignedFree {
  size_t alignment;
  void operator()(float* p) const { ::operator delete[](p, std::align_val_t(alignment)); }
};

}  // namespace

int64_t PackedMatrix::packed_floats(int64_t k, int64_t n) {
  return ((n + kPanel - 1) / kPanel) * kPanel * k;
}

PackedMatrix PackedMatrix::pack_into(const float* b, int64_t k, int64_t n, int64_t row_stride,
                                     int64_t col_stride, float* storage) {
  fill_packed(b, k, n, row_stride, col_stride, storage);
  PackedMatrix m;
  m.data_ = storage;
  m.k_ = k;
  m.n_ = n;
  return m;
}

PackedMatrix PackedMatrix::pack(const float* b, int64_t k, int64_t n, int64_t row_stride,
                                int64_t col_stride) {
  size_t bytes = static_cast<size_t>(std::max<int64_t>(1, packed_floats(k, n))) * sizeof(float);
  const bool huge = bytes >= kHugePage;
  const size_t alignment = huge ? kHugePage : kAlignment;
  if (huge) bytes = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  auto* storage = static_cast<float*>(::operator new[](bytes, std::align_val_t(alignment)));
#if defined(__linux__)
  if (huge) (void)madvise(storage, bytes, MADV_HUGEPAGE);  // a hint: failure changes nothing
#endif
  PackedMatrix m = pack_into(b, k, n, row_stride, col_stride, storage);
  m.owned_ = std::shared_ptr<float>(storage, AlignedFree{alignment});
  return m;
}

void sgemm_packed(const float* a, int64_t m, int64_t lda, const PackedMatrix& b, const float* bias,
                  float* c, int64_t ldc, ThreadPool* pool, Activation activation) {
  if (m <= 0 || b.n() <= 0) return;
  const SgemmTarget& target = active_target();
  const int threads = pool == nullptr ? 1 : pool->size();
  const int64_t panels = b.panels();
  // Below ~1 MFLOP waking the workers costs more than it saves.
  const bool tiny = m * b.n() * std::max<int64_t>(b.k(), 1) < (int64_t{1} << 19);
  if (threads == 1 || tiny) {
    target.panels(a, m, lda, b, 0, panels, bias, c, ldc, activation);
    return;
  }
  const int64_t granule = target.row_granule();
  if (panels >= 2 * threads || m < 2 * granule) {
    // Each thread owns whole panels of C: B is read once in total, A once per thread.
    parallel_for(pool, panels, 1, [&](int64_t p0, int64_t p1) {
      target.panels(a, m, lda, b, p0, p1, bias, c, ldc, activation);
    });
  } else {
    parallel_for(pool, m, granule, [&](int64_t r0, int64_t r1) {
      target.panels(a + r0 * lda, r1 - r0, lda, b, 0, panels, bias, c + r0 * ldc, ldc, activation);
    });
  }
}

void sgemm(const float* a, int64_t m, int64_t k, int64_t lda, const float* b, int64_t n,
           int64_t b_row_stride, int64_t b_col_stride, const float* bias, float* c, int64_t ldc,
           ThreadPool* pool) {
  // Grows once per calling thread, then reused by every later call.
  thread_local std::vector<float> storage;
  storage.resize(static_cast<size_t>(PackedMatrix::packed_floats(k, n)));
  const PackedMatrix packed =
      PackedMatrix::pack_into(b, k, n, b_row_stride, b_col_stride, storage.data());
  sgemm_packed(a, m, lda, packed, bias, c, ldc, pool);
}

void sgemm_reference(const float* a, int64_t m, int64_t k, int64_t lda, const float* b, int64_t n,
                     int64_t b_row_stride, int64_t b_col_stride, const float* bias, float* c,
                     int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (int64_t r = 0; r < k; ++r) {
        acc += static_cast<double>(a[i * lda + r]) * b[r * b_row_stride + j * b_col_stride];
      }
      c[i * ldc + j] = static_cast<float>(acc);
    }
  }
}

void apply_activation(Activation activation, float* x, int64_t n) {
  active_target().activation(activation, x, n);
}

void apply_activation_reference(Activation activation, float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (activation == Activation::kGeluErf) {
      x[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
    } else if (activation == Activation::kGeluTanh) {
      const double inner = std::sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v);
      x[i] = static_cast<float>(0.5 * v * (1.0 + std::tanh(inner)));
    } else if (activation == Activation::kSilu) {
      x[i] = static_cast<float>(v / (1.0 + std::exp(-v)));
    }
  }
}

const char* sgemm_path() {
  return active_target().name.c_str();
}

}  // namespace edgelm::kernels
