#pragma once
// Tokenizer case files: test strings, each followed by a line `__ggml_vocab_test__`. A case is everything
// between one separator line and the next (the first starts at the top of the file), without the newline
// that ends it, so a case may hold any text, newlines and empty strings included. Text after the last
// separator is one more case (llama.cpp's files sometimes end so, and its reader takes it the same way).
// `forge tokenize --file` reads this format, and the tokenizer tests read the reference cases with it.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace forge::tokenizer {

inline std::vector<std::string> parse_case_file(std::string_view content) {
    static constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";
    std::vector<std::string> cases;
    std::size_t pos = 0;
    for (std::size_t sep; (sep = content.find(kSeparator, pos)) != std::string_view::npos; pos = sep + kSeparator.size())
        cases.emplace_back(content.substr(pos, sep - pos));
    if (pos < content.size()) cases.emplace_back(content.substr(pos));
    return cases;
}

}  // namespace forge::tokenizer
