#include <algorithm>
#include <cstring>

#include "onnx/ops.h"

namespace edgelm::onnx {

Result<Tensor> Arena::alloc(DataType type, std::vector<int64_t> shape) {
  const size_t elem = data_type_size(type);
  if (elem == 0)
    return make_error(ErrorCode::kUnsupported, "cannot hold " + data_type_name(type) + " values");
  EDGELM_TRY(const int64_t n, shape_elements(shape));
  if (static_cast<uint64_t>(n) > max_tensor_bytes_ / elem) {
    return make_error(ErrorCode::kOutOfRange, "a " + data_type_name(type) + " tensor of shape " +
                                                  shape_string(shape) + " exceeds the limit of " +
                                                  std::to_string(max_tensor_bytes_) + " bytes");
  }
  const size_t need = static_cast<size_t>(n) * elem;
  requested_bytes_ += need;
  // Reuse an idle buffer that fits without wasting more than half of it.
  auto it = free_.lower_bound(need);
  if (it != free_.end() && it->first <= 2 * need + 256) {
    Block block = std::move(it->second);
    free_.erase(it);
    live_bytes_ += block.capacity;
    peak_bytes_ = std::max(peak_bytes_, live_bytes_);
    const void* data = block.owner.get();
    return Tensor::view(type, std::move(shape), data, std::move(block.owner));
  }
  EDGELM_TRY(Tensor t,
             Tensor::zeros(DataType::kUint8, {static_cast<int64_t>(need)}, max_tensor_bytes_));
  capacity_[t.raw()] = need;
  live_bytes_ += need;
  peak_bytes_ = std::max(peak_bytes_, live_bytes_);
  return Tensor::view(type, std::move(shape), t.raw(), t.owner());
}

void Arena::release(Tensor&& t) {
  if (t.empty()) return;
  auto it = capacity_.find(t.raw());
  if (it == capacity_.end()) return;  // a view of model data or a caller's feed
  std::shared_ptr<const void> owner = t.owner();
  t = Tensor();
  if (owner.use_count() != 1) return;  // still read by another value or by the caller
  live_bytes_ -= std::min<uint64_t>(live_bytes_, it->second);
  free_.emplace(it->second, Block{std::move(owner), it->second});
}

void Arena::lend(const Tensor& t) {
  if (t.empty() || capacity_.count(t.raw()) == 0) return;
  for (const Block& block : lent_) {
    if (block.owner == t.owner()) return;
  }
  lent_.push_back(Block{t.owner(), capacity_[t.raw()]});
}

void Arena::reclaim() {
  auto idle = std::stable_partition(lent_.begin(), lent_.end(),
                                    [](const Block& block) { return block.owner.use_count() > 1; });
  for (auto it = idle; it != lent_.end(); ++it) {
    live_bytes_ -= std::min<uint64_t>(live_bytes_, it->capacity);
    free_.emplace(it->capacity, std::move(*it));
  }
  lent_.erase(idle, lent_.end());
}

int64_t OpContext::attr_int(std::string_view name, int64_t fallback) const {
  const AttributeDef* a = node.attr(name);
  return a ? a->i : fallback;
}

float OpContext::attr_float(std::string_view name, float fallback) const {
  const AttributeDef* a = node.attr(name);
  return a ? a->f : fallback;
}

const std::vector<int64_t>* OpContext::attr_ints(std::string_view name) const {
  const AttributeDef* a = node.attr(name);
  return a ? &a->ints : nullptr;
}

std::string shape_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Result<int64_t> normalize_axis(const OpContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return ctx.error("axis " + std::to_string(axis) + " is out of range for rank " +
                     std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

Result<std::vector<int64_t>> broadcast_shapes(const OpContext& ctx, std::span<const int64_t> a,
                                              std::span<const int64_t> b) {
  const size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return ctx.error("shapes " + shape_string(a) + " and " + shape_string(b) +
                       " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Result<std::vector<int64_t>> read_int_list(const OpContext& ctx, const Tensor& t,
                                           std::string_view what) {
  if (t.rank() > 1)
    return ctx.error(std::string(what) + " must be 1-D, got shape " + shape_string(t.shape()));
  std::vector<int64_t> values(static_cast<size_t>(t.numel()));
  if (t.dtype() == DataType::kInt64) {
    std::copy_n(t.data<int64_t>(), t.numel(), values.begin());
  } else if (t.dtype() == DataType::kInt32) {
    std::copy_n(t.data<int32_t>(), t.numel(), values.begin());
  } else {
    return ctx.error(std::string(what) + " must be int64 or int32, got " +
                     data_type_name(t.dtype()));
  }
  return values;
}

Status expect_type(const OpContext& ctx, const Tensor& t, DataType type, std::string_view what) {
  if (t.dtype() != type) {
    return ctx.error(std::string(what) + " must be " + data_type_name(type) + ", got " +
                     data_type_name(t.dtype()));
  }
  return {};
}

std::vector<int64_t> contiguous_strides(std::span<const int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

const OpSpec* find_op(std::string_view op_type) {
  static const std::vector<OpSpec> table = [] {
    std::vector<OpSpec> t;
    register_elementwise_ops(t);
    register_shape_ops(t);
    register_math_ops(t);
    register_quant_ops(t);
    return t;
  }();
  for (const OpSpec& spec : table) {
    if (spec.op_type == op_type) return &spec;
  }
  return nullptr;
}

}  // namespace edgelm::onnx
