// edgelm inspect: print a GGUF file's metadata and tensor table (text or --json).
#include <cstdio>
#include <limits>

#include "cli.h"
#include "edgelm/gguf_inspect.h"

namespace edgelm::cli {
namespace {

int inspect(const std::string& path, bool as_json, bool full) {
  auto file = format::GgufFile::open(path);
  if (!file) return report(file.error());
  format::GgufDescribeOptions options;
  if (full) {
    options.max_array_items = std::numeric_limits<size_t>::max();
    options.max_string_bytes = std::numeric_limits<size_t>::max();
  }
  nlohmann::json description = format::describe_gguf(*file, options);
  description["path"] = path;
  if (as_json) {
    std::printf("%s\n", description.dump(2).c_str());
  } else {
    std::printf("%s", format::format_gguf_description(description).c_str());
  }
  return 0;
}

}  // namespace

void register_inspect(CLI::App& app, int& exit_code) {
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto full = std::make_shared<bool>(false);
  auto config_path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("inspect", "print a GGUF file's metadata and tensor table");
  cmd->add_option("model", *path, "GGUF file")->required();
  cmd->add_flag("--json", *as_json, "machine-readable output");
  cmd->add_flag("--full", *full, "print whole arrays and long strings");
  add_config_option(*cmd, *config_path);
  cmd->callback([=, &exit_code] {
    if (!config_path->empty()) {
      if (auto config = load_config(*config_path); !config) {
        exit_code = report(config.error());
        return;
      }
    }
    exit_code = inspect(*path, *as_json, *full);
  });
}

}  // namespace edgelm::cli
