#pragma once
// forge's Jinja engine for chat templates: `Template t(text)` parses once (errors name line:column),
// `t.render(context)` runs it in a sandbox (see jinja/limits.hpp) and gives the text, or parts that say
// which bytes the template wrote and which came from the context's values. Strings in `context` are
// data: a message's text stays data through every filter and concatenation, so when the prompt is
// tokenized it can never turn into special tokens. Strings in `trusted` (bos_token, eos_token) are the
// caller's and count as the template's own.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/chat/jinja/interpreter.hpp"
#include "forge/chat/jinja/lexer.hpp"
#include "forge/chat/jinja/parser.hpp"
#include "forge/json/json.hpp"

namespace forge::chat::jinja {

struct Part {
    std::string text;
    bool from_template;  // false: the bytes came from the context's values
};

class Template {
public:
    explicit Template(std::string_view text) : src_(std::make_shared<std::string>(Lexer::normalize_source(text))) {
        body_ = std::make_shared<Body>(Parser(*src_, Lexer(*src_).run()).parse_template());
    }

    std::vector<Part> render_parts(const json::Value& context, const json::Value& trusted = json::Object{}) const {
        const String s = run(context, trusted);
        std::vector<Part> parts;
        std::size_t at = 0;
        const auto add = [&](std::size_t end, bool from_template) {
            if (end > at) parts.push_back({s.str().substr(at, end - at), from_template});
            at = end;
        };
        for (const auto span : s.context_spans()) {
            add(span.begin, true);
            add(span.end, false);
        }
        add(s.size(), true);
        return parts;
    }

    std::string render(const json::Value& context, const json::Value& trusted = json::Object{}) const { return run(context, trusted).str(); }

    const std::string& source() const { return *src_; }

private:
    String run(const json::Value& context, const json::Value& trusted) const {
        if (!context.is_object() || !trusted.is_object()) throw Error("jinja: a render's context must be a JSON object");
        Interpreter in(*src_);
        auto scope = in.globals();
        for (const auto& [k, v] : trusted.as_object()) scope->vars[k] = from_json(v, true);
        for (const auto& [k, v] : context.as_object()) scope->vars[k] = from_json(v);
        auto top = std::make_shared<Scope>(scope);
        String out;
        in.run(*body_, top, out);
        return out;
    }

    // Shared so that a Template copies cheaply; the tree refers into the source for error positions.
    std::shared_ptr<const std::string> src_;
    std::shared_ptr<const Body> body_;
};

}  // namespace forge::chat::jinja
