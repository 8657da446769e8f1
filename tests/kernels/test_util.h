// Shared helpers for the kernel tests: seeded random data, quantized matrices, error measures.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "edgelm/kernels.h"
#include "edgelm/quant.h"
#include "edgelm/tensor_type.h"

namespace edgelm::kernels::test {

// Attention parameters with the usual 1/sqrt(head_dim) score scale.
inline AttentionParams attention_params(int n_head, int n_head_kv, int head_dim, float softcap,
                                        int32_t window) {
  AttentionParams p;
  p.n_head = n_head;
  p.n_head_kv = n_head_kv;
  p.head_dim = head_dim;
  p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  p.softcap = softcap;
  p.window = window;
  return p;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A rows x cols matrix of `type`, made by quantizing `values` row by row.
struct QuantMatrix {
  std::vector<uint8_t> bytes;
  MatrixView view;
  std::vector<float> dequantized;  // rows * cols, what the weights decode to
};

inline QuantMatrix make_matrix(TensorType type, int64_t rows, int64_t cols,
                               const std::vector<float>& values) {
  QuantMatrix m;
  const uint64_t row_bytes = tensor_bytes(type, static_cast<uint64_t>(cols)).value();
  m.bytes.resize(row_bytes * rows);
  m.dequantized.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(
        tensor::quantize_row(type, values.data() + r * cols, m.bytes.data() + r * row_bytes, cols)
            .has_value());
    EXPECT_TRUE(tensor::dequantize_row(type, m.bytes.data() + r * row_bytes,
                                       m.dequantized.data() + r * cols, cols)
                    .has_value());
  }
  m.view = MatrixView{type, m.bytes.data(), rows, cols, row_bytes};
  return m;
}

// y = W x in double precision from the decoded weights: the oracle for matmul.
inline std::vector<double> matmul_oracle(const QuantMatrix& m, const std::vector<float>& x,
                                         int64_t n_tokens) {
  const int64_t rows = m.view.rows, cols = m.view.cols;
  std::vector<double> y(static_cast<size_t>(rows * n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        sum += static_cast<double>(m.dequantized[r * cols + c]) * x[t * cols + c];
      }
      y[t * rows + r] = sum;
    }
  }
  return y;
}

// Normalized mean squared error sum((a-b)^2) / sum(b^2), as llama.cpp's test-backend-ops.
template <class A, class B>
double nmse(const A& actual, const B& expected) {
  double err = 0.0, ref = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double d = static_cast<double>(actual[i]) - static_cast<double>(expected[i]);
    err += d * d;
    ref += static_cast<double>(expected[i]) * expected[i];
  }
  return ref > 0.0 ? err / ref : err;
}

template <class A, class B>
double max_abs_diff(const A& actual, const B& expected) {
  double m = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    m = std::max(m, std::abs(static_cast<double>(actual[i]) - static_cast<double>(expected[i])));
  }
  return m;
}

// Every tensor type the kernels accept and tensor:: can also quantize (to make test data).
inline std::vector<TensorType> matmul_test_types() {
  std::vector<TensorType> types;
  for (uint32_t id = 0; id < 64; ++id) {
    const TensorTypeTraits* t = find_tensor_type(id);
    if (t != nullptr && supports_type(t->type) && tensor::can_quantize(t->type)) {
      types.push_back(t->type);
    }
  }
  return types;
}

}  // namespace edgelm::kernels::test
