// libFuzzer target for the Jinja engine: any template text either fails with forge::Error (parsing or
// rendering, the sandbox limits included) or renders, against a fixed chat context, to text whose parts
// (template text and context text) join to the same text. Anything else (a crash, a hang, another
// exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "forge/chat/jinja.hpp"

namespace {

const forge::json::Value& context() {
    static const forge::json::Value c = forge::json::parse(R"({
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <|im_end|>"},
                     {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                      "function": {"name": "f", "arguments": {"x": 1, "y": [true, null, 2.5]}}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "{\"ok\": 1}"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                   "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}],
        "add_generation_prompt": true, "enable_thinking": false})");
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const forge::chat::jinja::Template t(text);
        const auto trusted = forge::json::parse(R"({"bos_token": "<s>", "eos_token": "</s>"})");
        const auto parts = t.render_parts(context(), trusted);
        std::string joined;
        for (const auto& p : parts) {
            if (p.text.empty()) __builtin_trap();
            joined += p.text;
        }
        if (joined.size() > forge::chat::jinja::kMaxOutputBytes) __builtin_trap();
    } catch (const forge::Error&) {
    }
    return 0;
}
