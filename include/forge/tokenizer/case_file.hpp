#pragma once
// Tokenizer case files: test strings, each followed by a line `__ggml_vocab_test__`. A case is everything
// between one separator line and the next (the first starts at the top of the file), without the newline
// that ends it, so a case may hold any text, newlines and empty strings included. `forge tokenize --file`
// reads this format, and the tokenizer tests read the reference cases with it.
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"

namespace forge::tokenizer {

inline std::vector<std::string> parse_case_file(std::string_view content) {
    static constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";
    std::vector<std::string> cases;
    std::size_t pos = 0;
    for (std::size_t sep; (sep = content.find(kSeparator, pos)) != std::string_view::npos; pos = sep + kSeparator.size())
        cases.emplace_back(content.substr(pos, sep - pos));
    if (pos < content.size())
        throw Error("case file: text after the last __ggml_vocab_test__ line (at byte offset " + std::to_string(pos) + ")");
    return cases;
}

}  // namespace forge::tokenizer
