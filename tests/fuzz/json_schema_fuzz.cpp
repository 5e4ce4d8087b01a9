// libFuzzer target for JSON schema -> grammar and the matcher. The input is a schema, optionally
// followed by a blank line and a document. Any input must compile or fail with forge::Error, and
// matching must finish or fail with forge::Error (an ambiguity bound); a document the grammar accepts
// whole must be JSON (forge::json::parse takes it), and feeding it in one piece or byte by byte must
// agree.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "forge/grammar/json_schema.hpp"
#include "forge/grammar/matcher.hpp"
#include "forge/json/json.hpp"

namespace {

void check_document(const std::shared_ptr<const forge::grammar::Grammar>& g, std::string_view doc) {
    forge::grammar::Matcher whole(g), bytes(g);
    const bool fed = whole.feed(doc);
    bool all = true;
    for (std::size_t i = 0; i < doc.size() && all; ++i) all = bytes.feed(doc.substr(i, 1));
    if (fed != all) __builtin_trap();
    if (fed && whole.complete() != bytes.complete()) __builtin_trap();
    if (fed && whole.complete()) {
        try {
            forge::json::parse(doc);
        } catch (const forge::Error&) {
            __builtin_trap();  // the grammar accepted text that is not JSON
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t split = input.find("\n\n");
    const std::string_view schema = input.substr(0, split);
    try {
        const auto g = std::make_shared<const forge::grammar::Grammar>(forge::grammar::json_schema_grammar(forge::json::parse(schema)));
        if (split != std::string_view::npos) check_document(g, input.substr(split + 2));
        for (const std::string_view doc : {"{}", "[]", "\"a\"", "0", "-1.5e3", "null", "true", " {\"a\": [1, \"x\"]} "}) check_document(g, doc);
    } catch (const forge::Error&) {
    }
    return 0;
}
