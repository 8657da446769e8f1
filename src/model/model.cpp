#include "edgelm/model.h"

#include <utility>

#include "model/weights.h"

namespace edgelm::model {

Model::Model(format::GgufFile&& file, HParams hparams, std::shared_ptr<const void> owner)
    : owner_(std::move(owner)), file_(std::move(file)), hparams_(std::move(hparams)) {}

Model::~Model() = default;

Result<std::unique_ptr<Model>> Model::load(const std::filesystem::path& path,
                                           const LoadOptions& options) {
  format::GgufOpenOptions open_options;
  open_options.use_mmap = options.use_mmap;
  EDGELM_TRY(format::GgufFile file, format::GgufFile::open(path, open_options));
  auto model = from_gguf(std::move(file), options);
  if (!model) {
    Error error = std::move(model).error();
    error.message = path.string() + ": " + error.message;
    return error;
  }
  return model;
}

Result<std::unique_ptr<Model>> Model::from_gguf(format::GgufFile&& file,
                                                const LoadOptions& options) {
  return build(std::move(file), nullptr, options.repack);
}

Result<std::unique_ptr<Model>> Model::from_memory(std::span<const uint8_t> bytes,
                                                  std::shared_ptr<const void> owner) {
  if (owner == nullptr) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "model from memory: no owner keeps the " + std::to_string(bytes.size()) + " bytes alive");
  }
  EDGELM_TRY(format::GgufFile file, format::GgufFile::parse(bytes));
  return build(std::move(file), std::move(owner), /*repack=*/false);
}

Result<std::unique_ptr<Model>> Model::build(format::GgufFile&& file,
                                            std::shared_ptr<const void> owner, bool repack) {
  EDGELM_TRY(HParams hparams, read_hparams(file));
  std::unique_ptr<Model> model(new Model(std::move(file), std::move(hparams), std::move(owner)));
  // The views point into model->file_, which owns the (mapped) bytes for the model's lifetime, or
  // into the bytes model->owner_ keeps alive.
  EDGELM_TRY(model->weights_, detail::load_weights(model->file_, model->hparams_));
  if (repack) detail::repack_weights(*model->weights_, model->file_);
  return model;
}

}  // namespace edgelm::model
