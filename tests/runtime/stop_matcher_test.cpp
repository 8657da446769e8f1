#include "edgelm/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>

namespace edgelm::runtime {
namespace {

// Feeds `text` in the given chunk sizes and returns everything emitted.
std::string feed(StopMatcher& m, const std::string& text, const std::vector<size_t>& chunks) {
  std::string out;
  size_t pos = 0;
  for (size_t n : chunks) {
    out += m.push(text.substr(pos, n));
    pos = std::min(text.size(), pos + n);
  }
  out += m.push(text.substr(pos));
  return out + m.flush();
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.push("hello"), "hello");
  EXPECT_EQ(m.flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, CutsAtStopSplitAcrossChunks) {
  StopMatcher m({"\nUser:"});
  EXPECT_EQ(m.push("Hi there"), "Hi there");
  EXPECT_EQ(m.push("!\nUs"), "!");  // "\nUs" may begin the stop string
  EXPECT_EQ(m.push("er: more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, ReleasesHeldTextWhenItDiverges) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("ab ST"), "ab ");
  EXPECT_EQ(m.push("AR"), "STAR");
  EXPECT_EQ(m.push("S"), "");
  EXPECT_EQ(m.flush(), "S");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(m.push("hello world"), "hel");
  EXPECT_TRUE(m.stopped());
}

// Against a direct oracle: the output equals the text up to the first occurrence of any stop,
// whatever the chunking.
TEST(StopMatcher, RandomChunkingMatchesOracle) {
  std::mt19937 rng(7);
  const std::vector<std::string> stops = {"abc", "cab", "bb"};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text;
    const int len = static_cast<int>(rng() % 20);
    for (int i = 0; i < len; ++i) text += static_cast<char>('a' + rng() % 3);
    size_t cut = std::string::npos;
    for (const auto& s : stops) cut = std::min(cut, text.find(s));
    const std::string expected = cut == std::string::npos ? text : text.substr(0, cut);
    std::vector<size_t> chunks;
    for (size_t used = 0; used < text.size();) {
      size_t n = 1 + rng() % 4;
      chunks.push_back(n);
      used += n;
    }
    StopMatcher m(stops);
    EXPECT_EQ(feed(m, text, chunks), expected) << text;
  }
}

}  // namespace
}  // namespace edgelm::runtime
