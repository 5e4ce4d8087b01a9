#pragma once
// Tool calls in a model's reply (forge::chat). Each template family tells its model to write calls its own
// way, and the reply is read back the same way:
//   hermes   (Qwen, Hermes, SmolLM, ... ; the default): <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>,
//            any number of them, with text around them;
//   llama3   (Llama-3.1/3.2/3.3): the whole reply is {"name": N, "parameters": {...}} (after <|python_tag|>
//            when the model writes one), or several separated by ';';
//   mistral  (Mistral-Nemo): the whole reply is [TOOL_CALLS][{"name": N, "arguments": {...}}, ...].
// Markers that are control tokens (Llama's <|python_tag|>, Nemo's [TOOL_CALLS]) are not part of the reply's
// text, so they are optional here. Text that looks like a call but does not parse as one (bad JSON, no name,
// arguments not an object) stays plain content: a reply is never an error.
//
// ToolCallParser reads a reply as it streams: plain text is released as it comes, text that may be the
// start of a call is held until it is known, and each call is released whole once complete.
// tool_call_grammar() is the other direction: the grammar of a reply that is nothing but calls in the
// format, their arguments valid against each tool's parameter schema, for a call the request forces.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/chat/template.hpp"
#include "forge/core/error.hpp"
#include "forge/grammar/json_schema.hpp"
#include "forge/json/json.hpp"

namespace forge::chat {

enum class ToolCallFormat { hermes, llama3, mistral };

constexpr std::string_view tool_call_format_name(ToolCallFormat f) {
    switch (f) {
        case ToolCallFormat::hermes: return "hermes";
        case ToolCallFormat::llama3: return "llama3";
        case ToolCallFormat::mistral: return "mistral";
    }
    return "?";
}

// The format a Jinja chat template asks its model to call tools in, from the instructions and history it
// writes. A template without tool calls (or with a format forge does not read) gets Hermes': the model
// has no instructions either way, and a forced call is written as the grammar dictates.
inline ToolCallFormat tool_call_format(std::string_view tmpl) {
    const auto has = [&](std::string_view s) { return tmpl.find(s) != std::string_view::npos; };
    if (has("[TOOL_CALLS][") && !has("[ARGS]")) return ToolCallFormat::mistral;
    if (has("<|start_header_id|>") && has("\"parameters\": ") && !has("<tool_call>")) return ToolCallFormat::llama3;
    return ToolCallFormat::hermes;
}

// A new call's id: "call_" and 24 letters and digits, as OpenAI's; Mistral's templates insist on exactly 9
// letters and digits (and refuse the conversation's next turn otherwise).
inline std::string new_tool_call_id(ToolCallFormat f) {
    static constexpr std::string_view kAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<std::size_t> pick(0, kAlnum.size() - 1);
    std::string id = f == ToolCallFormat::mistral ? "" : "call_";
    const int n = f == ToolCallFormat::mistral ? 9 : 24;
    for (int i = 0; i < n; ++i) id += kAlnum[pick(rng)];
    return id;
}

// What a reply (or a piece of one) says: text for the user, and calls.
struct ParsedReply {
    std::string content;
    std::vector<ToolCall> tool_calls;
};

namespace detail {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline std::string_view trim_left(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    return s;
}

// The length of the JSON object or array that `s` starts with (string-aware bracket matching), or 0 when
// it does not close within `s`. The text is validated by json::parse afterwards.
inline std::size_t json_value_length(std::string_view s) {
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        }
        if (depth == 0) return 0;  // not an object or array
    }
    return 0;
}

// {"name": N, "arguments" (or "parameters"): {...}} as a call; arguments written as a string holding a JSON
// object are read too. nullopt for anything else.
inline std::optional<ToolCall> call_of(const json::Value& v, ToolCallFormat f) {
    if (!v.is_object()) return std::nullopt;
    const json::Value* name = v.find("name");
    if (!name || !name->is_string() || name->as_string().empty()) return std::nullopt;
    const json::Value* args = v.find("arguments");
    if (!args) args = v.find("parameters");
    json::Value arguments = json::Object{};
    if (args && args->is_string()) {
        try {
            arguments = json::parse(args->as_string());
        } catch (const Error&) {
            return std::nullopt;
        }
    } else if (args) {
        arguments = *args;
    }
    if (!arguments.is_object()) return std::nullopt;
    return ToolCall{new_tool_call_id(f), name->as_string(), std::move(arguments)};
}

inline std::optional<json::Value> parse_json(std::string_view s) {
    try {
        return json::parse(s);
    } catch (const Error&) {
        return std::nullopt;
    }
}

// The calls of a whole reply in the Llama-3 or Mistral format, or nullopt when it is not one.
inline std::optional<std::vector<ToolCall>> whole_reply_calls(std::string_view s, ToolCallFormat f) {
    s = trim_left(s);
    std::vector<ToolCall> calls;
    if (f == ToolCallFormat::mistral) {
        if (s.starts_with("[TOOL_CALLS]")) s.remove_prefix(12);
        const auto v = parse_json(s);
        if (!v || !v->is_array() || v->as_array().empty()) return std::nullopt;
        for (const auto& item : v->as_array()) {
            auto call = call_of(item, f);
            if (!call) return std::nullopt;
            calls.push_back(std::move(*call));
        }
        return calls;
    }
    if (s.starts_with("<|python_tag|>")) s.remove_prefix(14);
    for (s = trim_left(s); !s.empty(); s = trim_left(s)) {
        const std::size_t n = json_value_length(s);
        const auto v = n ? parse_json(s.substr(0, n)) : std::nullopt;
        auto call = v ? call_of(*v, f) : std::nullopt;
        if (!call) return std::nullopt;
        calls.push_back(std::move(*call));
        s = trim_left(s.substr(n));
        if (s.starts_with(";")) s.remove_prefix(1);
    }
    if (calls.empty()) return std::nullopt;
    return calls;
}

enum class Opening { no, maybe, yes };

// How `s` relates to the opening of a whole-reply call: whitespace, an optional `marker`, then the
// characters of `shape` with whitespace allowed between them.
inline Opening opening_of(std::string_view s, std::string_view marker, std::string_view shape) {
    s = trim_left(s);
    if (s.starts_with(marker)) s.remove_prefix(marker.size());
    else if (marker.starts_with(s)) return Opening::maybe;
    for (const char c : shape) {
        s = trim_left(s);
        if (s.empty()) return Opening::maybe;
        if (s.front() != c) return Opening::no;
        s.remove_prefix(1);
    }
    return Opening::yes;
}

}  // namespace detail

class ToolCallParser {
public:
    explicit ToolCallParser(ToolCallFormat format) : format_(format) {}

    // Reply text as it becomes final; returns what can be released now.
    ParsedReply feed(std::string_view text) {
        ParsedReply out;
        held_ += text;
        if (format_ == ToolCallFormat::hermes) scan_blocks(out, false);
        else scan_whole(out, false);
        return out;
    }

    // The end of the reply: releases everything held. A Hermes call cut off before its closing tag (the
    // model ended its turn there) counts when what it holds is a whole call.
    ParsedReply finish() {
        ParsedReply out;
        if (format_ == ToolCallFormat::hermes) scan_blocks(out, true);
        else scan_whole(out, true);
        if (!made_calls_) out.content += std::exchange(pending_space_, {});
        return out;
    }

private:
    static constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";

    // Plain text for the user. Whitespace at its end is held back, since it may only separate calls: it is
    // released with the text after it, or at the end of a reply that made no calls.
    void release(ParsedReply& out, std::string_view text) {
        if (after_call_) text = detail::trim_left(text);
        std::size_t end = text.size();
        while (end > 0 && detail::is_space(text[end - 1])) --end;
        if (end == 0) {
            pending_space_ += text;
            return;
        }
        after_call_ = false;
        out.content += std::exchange(pending_space_, {});
        out.content += text.substr(0, end);
        pending_space_ = std::string(text.substr(end));
    }

    void called(ParsedReply& out, ToolCall call) {
        out.tool_calls.push_back(std::move(call));
        made_calls_ = after_call_ = true;
        pending_space_.clear();
    }

    void scan_blocks(ParsedReply& out, bool final) {
        for (;;) {
            if (!in_call_) {
                const std::size_t open = held_.find(kOpen);
                if (open == std::string::npos) {
                    // Keep the longest tail that could still grow into the opening tag.
                    std::size_t keep = final ? 0 : std::min(held_.size(), kOpen.size() - 1);
                    while (keep > 0 && !kOpen.starts_with(std::string_view(held_).substr(held_.size() - keep))) --keep;
                    release(out, std::string_view(held_).substr(0, held_.size() - keep));
                    held_.erase(0, held_.size() - keep);
                    return;
                }
                release(out, std::string_view(held_).substr(0, open));
                held_.erase(0, open + kOpen.size());
                in_call_ = true;
            }
            const std::size_t close = held_.find(kClose);
            if (close == std::string::npos && !final) return;
            const std::string_view body = std::string_view(held_).substr(0, close == std::string::npos ? held_.size() : close);
            const auto v = detail::parse_json(body);
            if (auto call = v ? detail::call_of(*v, format_) : std::nullopt) {
                called(out, std::move(*call));
            } else {
                release(out, std::string(kOpen) + std::string(body) + (close == std::string::npos ? "" : std::string(kClose)));
            }
            held_.erase(0, close == std::string::npos ? held_.size() : close + kClose.size());
            in_call_ = false;
        }
    }

    void scan_whole(ParsedReply& out, bool final) {
        if (opening_ == detail::Opening::maybe) {
            opening_ = format_ == ToolCallFormat::mistral ? detail::opening_of(held_, "[TOOL_CALLS]", "[{\"")
                                                          : detail::opening_of(held_, "<|python_tag|>", "{\"");
        }
        if (opening_ == detail::Opening::no || (final && opening_ == detail::Opening::maybe)) {
            release(out, held_);
            held_.clear();
            return;
        }
        if (!final) return;  // a call, or text that starts like one: known only at the end
        if (auto calls = detail::whole_reply_calls(held_, format_)) {
            for (auto& c : *calls) called(out, std::move(c));
        } else {
            release(out, held_);
        }
        held_.clear();
    }

    ToolCallFormat format_;
    std::string held_;           // text not yet released
    std::string pending_space_;  // whitespace released text ended with, not yet given out
    bool in_call_ = false;       // hermes: inside <tool_call>
    bool made_calls_ = false;
    bool after_call_ = false;    // drop the whitespace that follows a call
    detail::Opening opening_ = detail::Opening::maybe;  // llama3, mistral: does the reply open as a call?
};

// A whole reply, read as a stream in one piece.
inline ParsedReply parse_tool_calls(ToolCallFormat format, std::string_view reply) {
    ToolCallParser p(format);
    ParsedReply out = p.feed(reply);
    ParsedReply rest = p.finish();
    out.content += rest.content;
    for (auto& c : rest.tool_calls) out.tool_calls.push_back(std::move(c));
    return out;
}

// A tool a reply may call: its name and the JSON schema of its arguments (null: any object).
struct ToolSchema {
    std::string name;
    json::Value parameters;
};

// A tool's schema the grammar compiler refuses (an unsupported keyword, say), and which tool it was.
class ToolSchemaError : public Error {
public:
    ToolSchemaError(std::size_t index_, const std::string& what) : Error(what), index(index_) {}
    std::size_t index;  // in the span given to tool_call_grammar
};

// The grammar of a reply that calls one of `tools` (several calls when `parallel`, where the format has
// them: Llama-3's templates take one call per turn), written as the format's template shows its model:
//   hermes   <tool_call>\n{"name": N, "arguments": ARGS}\n</tool_call>, calls one per line
//   llama3   {"name": N, "parameters": ARGS}
//   mistral  [{"name": N, "arguments": ARGS}, ...]
// Markers that are control tokens are left out: constrained generation never writes a control token (it
// writes no text), and the parser reads calls without them. Qwen's <tool_call> is text.
inline grammar::Grammar tool_call_grammar(ToolCallFormat format, std::span<const ToolSchema> tools, bool parallel) {
    if (tools.empty()) throw Error("tool_call_grammar: no tools to call");
    grammar::Builder b;
    grammar::JsonGrammar json(b);
    const char* args_key = format == ToolCallFormat::llama3 ? "parameters" : "arguments";
    std::vector<grammar::Expr> calls;
    for (std::size_t i = 0; i < tools.size(); ++i) {
        grammar::Expr args;
        try {
            args = tools[i].parameters.is_null() ? json.any_object() : json.schema(tools[i].parameters);
        } catch (const Error& e) {
            throw ToolSchemaError(i, "tool '" + tools[i].name + "': " + e.what());
        }
        const std::string head = "{\"name\": " + json::dump(json::Value(tools[i].name)) + ", \"" + args_key + "\": ";
        calls.push_back(b.seq({b.literal(head), args, b.literal("}")}));
    }
    const grammar::Expr call = b.any(std::move(calls));
    const auto one_or_more = [&](grammar::Expr item, std::string_view separator) {
        return parallel ? b.seq({item, b.repeat(b.seq({b.literal(separator), item}), 0, grammar::kUnbounded)}) : item;
    };
    switch (format) {
        case ToolCallFormat::hermes:
            return b.build(one_or_more(b.seq({b.literal("<tool_call>\n"), call, b.literal("\n</tool_call>")}), "\n"));
        case ToolCallFormat::llama3: return b.build(call);
        case ToolCallFormat::mistral: return b.build(b.seq({b.literal("["), one_or_more(call, ", "), b.literal("]")}));
    }
    throw Error("tool_call_grammar: unknown format");
}

}  // namespace forge::chat
