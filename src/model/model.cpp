#include "edgelm/model.h"

#include <utility>

#include "model/weights.h"

namespace edgelm::model {

Model::Model(format::GgufFile&& file, HParams hparams)
    : file_(std::move(file)), hparams_(std::move(hparams)) {}

Model::~Model() = default;

Result<std::unique_ptr<Model>> Model::load(const std::filesystem::path& path,
                                           const LoadOptions& options) {
  format::GgufOpenOptions open_options;
  open_options.use_mmap = options.use_mmap;
  EDGELM_TRY(format::GgufFile file, format::GgufFile::open(path, open_options));
  auto model = from_gguf(std::move(file));
  if (!model) {
    Error error = std::move(model).error();
    error.message = path.string() + ": " + error.message;
    return error;
  }
  return model;
}

Result<std::unique_ptr<Model>> Model::from_gguf(format::GgufFile&& file) {
  EDGELM_TRY(HParams hparams, read_hparams(file));
  std::unique_ptr<Model> model(new Model(std::move(file), std::move(hparams)));
  // The views point into model->file_, which owns the (mapped) bytes for the model's lifetime.
  EDGELM_TRY(model->weights_, detail::load_weights(model->file_, model->hparams_));
  return model;
}

}  // namespace edgelm::model
