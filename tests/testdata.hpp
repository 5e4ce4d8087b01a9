#pragma once
// Paths to the shared test data (models, llama.cpp references, tokenizer vectors).
#include <string>

namespace forge::test {

inline std::string testdata(const std::string& rel) { return std::string(FORGE_TESTDATA_DIR) + "/" + rel; }
inline std::string model_path(const std::string& file) { return testdata("models/" + file); }

}  // namespace forge::test
