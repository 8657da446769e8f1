// Finds stop strings in streamed text without ever emitting a stop string or a part of one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgelm::runtime {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Appends text; returns the part that is now safe to emit. Text that might be the start of a
  // stop string is held back until it is decided.
  std::string push(std::string_view text);
  // True once a stop string was seen; later pushes return nothing.
  bool stopped() const { return stopped_; }
  // At the end of generation: everything still held back (nothing if stopped).
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace edgelm::runtime
