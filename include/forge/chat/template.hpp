#pragma once
// Chat prompts (forge::chat). A GGUF file carries its chat format as a Jinja template
// (`tokenizer.chat_template`), which chat::Template runs with forge's own engine (forge/chat/jinja.hpp).
// A file without one, or whose template does not parse, falls back to a built-in family recognised from
// the template's text: ChatML, Llama-2, Llama-3, Zephyr and Mistral, with ChatML when nothing matches.
// Text the template writes (<|im_start|>, [INST], <s>, ...) becomes special tokens where the vocabulary
// has them; the messages' own text never does, so a user cannot forge a turn by typing a marker.
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/chat/jinja.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/json/json.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge::chat {

enum class Format { chatml, llama2, llama3, zephyr, mistral };

constexpr std::string_view format_name(Format f) {
    switch (f) {
        case Format::chatml: return "chatml";
        case Format::llama2: return "llama2";
        case Format::llama3: return "llama3";
        case Format::zephyr: return "zephyr";
        case Format::mistral: return "mistral";
    }
    return "?";
}

// The family a Jinja chat template belongs to, from the markers it writes.
inline Format detect_format(std::string_view tmpl) {
    const auto has = [&](std::string_view s) { return tmpl.find(s) != std::string_view::npos; };
    if (has("<|im_start|>")) return Format::chatml;
    if (has("<|start_header_id|>")) return Format::llama3;
    if (has("<|user|>") && has("<|assistant|>")) return Format::zephyr;
    if (has("[INST]")) return has("<<SYS>>") ? Format::llama2 : Format::mistral;
    return Format::chatml;
}

// The family of a model file's chat template (ChatML when the file has none).
inline Format format_of(const gguf::File& file) { return detect_format(file.get_string("tokenizer.chat_template").value_or("")); }

// A call the assistant made, as the OpenAI API carries it: templates index `tool_call.function.arguments`
// and iterate it as a mapping, so the arguments are a JSON object, not its text.
struct ToolCall {
    std::string id;
    std::string name;
    json::Value arguments;  // a JSON object
};

// One turn. An aggregate, so {"user", "Hi"} is a message.
struct Message {
    std::string role;  // "system", "user", "assistant" or "tool"
    std::string content;
    // Defaulted so that {"user", "Hi"} leaves them empty without a missing-initializer warning.
    std::vector<ToolCall> tool_calls = {};  // the assistant's calls
    std::string tool_call_id = {};          // a tool result: the call it answers
    std::string name = {};                  // a tool result: the function's name
};

// A rendered prompt in order: markers the template writes (candidates for special tokens) and text.
struct PromptPart {
    std::string text;
    bool marker;
};

namespace detail {

inline std::string_view trim(std::string_view s) {
    const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && ws(s.back())) s.remove_suffix(1);
    return s;
}

class PromptBuilder {
public:
    PromptBuilder& marker(std::string_view s) { return add(s, true); }
    PromptBuilder& text(std::string_view s) { return add(s, false); }
    std::vector<PromptPart> take() { return std::move(parts_); }

private:
    PromptBuilder& add(std::string_view s, bool marker) {
        if (s.empty()) return *this;
        if (!marker && !parts_.empty() && !parts_.back().marker) parts_.back().text += s;
        else parts_.push_back({std::string(s), marker});
        return *this;
    }
    std::vector<PromptPart> parts_;
};

}  // namespace detail

// The prompt for `messages` followed by the start of the assistant's reply (unless not
// `add_generation_prompt`), as the family's reference template writes it. `bos` and `eos` are the
// vocabulary's texts for those tokens. Formats without a
// system role (Llama-2, Mistral) put the system text at the head of the first user message, as their
// templates do.
inline std::vector<PromptPart> render(Format format, std::span<const Message> messages, std::string_view bos,
                   std::string_view eos, bool add_generation_prompt = true) {
    detail::PromptBuilder p;
    std::string system;
    for (const auto& m : messages)
        if (m.role == "system") system += (system.empty() ? "" : "\n\n") + m.content;
    bool system_pending = !system.empty();

    switch (format) {
        case Format::chatml:
            for (const auto& m : messages) p.marker("<|im_start|>").text(m.role + "\n" + m.content).marker("<|im_end|>").text("\n");
            if (add_generation_prompt) p.marker("<|im_start|>").text("assistant\n");
            break;
        case Format::llama3:
            p.marker(bos);
            for (const auto& m : messages)
                p.marker("<|start_header_id|>").text(m.role).marker("<|end_header_id|>").text("\n\n").text(detail::trim(m.content)).marker("<|eot_id|>");
            if (add_generation_prompt) p.marker("<|start_header_id|>").text("assistant").marker("<|end_header_id|>").text("\n\n");
            break;
        case Format::zephyr:
            for (const auto& m : messages) p.marker("<|" + m.role + "|>").text("\n" + m.content).marker(eos).text("\n");
            if (add_generation_prompt) p.marker("<|assistant|>").text("\n");
            break;
        case Format::llama2:
            for (const auto& m : messages) {
                if (m.role == "user") {
                    const std::string content = system_pending ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content : m.content;
                    system_pending = false;
                    p.marker(bos).marker("[INST]").text(" ").text(detail::trim(content)).text(" ").marker("[/INST]");
                } else if (m.role == "assistant") {
                    p.text(" ").text(detail::trim(m.content)).text(" ").marker(eos);
                }
            }
            break;
        case Format::mistral:
            p.marker(bos);
            for (const auto& m : messages) {
                if (m.role == "user") {
                    std::string content = m.content;
                    if (system_pending) content = system + "\n\n" + content;
                    system_pending = false;
                    p.marker("[INST]").text(" " + content + " ").marker("[/INST]");
                } else if (m.role == "assistant") {
                    p.text(m.content).marker(eos);
                }
            }
            break;
    }
    return p.take();
}

inline std::string to_text(std::span<const PromptPart> parts) {
    std::string out;
    for (const auto& part : parts) out += part.text;
    return out;
}

// The vocabulary's text for `id`, or `fallback` when it has no such token.
inline std::string_view token_text_or(const Tokenizer& tok, std::int32_t id, std::string_view fallback) {
    return id == tokenizer::kNoToken ? fallback : std::string_view(tok.token_text(id));
}

// Token ids for a rendered prompt. Text the template wrote (markers) is searched for the vocabulary's
// control and user-defined tokens; text from the messages never is. Between special tokens, runs of text
// (both kinds) are encoded whole, as if the prompt were one string split at its special tokens. BOS comes
// first when the vocabulary adds one, and never twice (a template that writes bos_token itself).
inline std::vector<std::int32_t> encode_parts(const Tokenizer& tok, std::span<const PromptPart> parts) {
    using tokenizer::TokenType;
    std::vector<std::int32_t> ids;
    if (tok.add_bos() && tok.bos() != tokenizer::kNoToken) ids.push_back(tok.bos());
    std::string text;
    const auto flush = [&] {
        const auto t = tok.encode(text, false, false);
        ids.insert(ids.end(), t.begin(), t.end());
        text.clear();
    };
    for (const auto& part : parts) {
        if (!part.marker) {
            text += part.text;
            continue;
        }
        // The tokenizer's own split finds the special tokens; the text between them joins the run.
        std::size_t pos = 0;
        for (const std::int32_t id : tok.encode(part.text, false, true)) {
            const TokenType type = tok.vocab().type(id);
            if (type != TokenType::control && type != TokenType::user_defined) continue;
            const std::size_t at = part.text.find(tok.token_text(id), pos);
            if (at == std::string::npos) continue;
            text.append(part.text, pos, at - pos);
            flush();
            if (!(id == tok.bos() && ids.size() == 1 && ids[0] == tok.bos())) ids.push_back(id);
            pos = at + tok.token_text(id).size();
            if (tok.vocab().strips_space_after(id))
                while (pos < part.text.size() && (part.text[pos] == ' ' || (part.text[pos] >= '\t' && part.text[pos] <= '\r'))) ++pos;
        }
        text.append(part.text, pos);
    }
    flush();
    return ids;
}

// Messages in the OpenAI API's shape: [{role, content, tool_calls, tool_call_id, name}], content a string,
// null, or an array of parts whose text parts are joined with newlines; a tool call's arguments an object
// or a JSON object in a string. Errors name the field (messages[1].content).
inline std::vector<Message> messages_from_json(const json::Value& j) {
    const auto bad = [](const std::string& at, const std::string& what) { return Error(at + " " + what); };
    if (!j.is_array()) throw bad("messages", std::string("must be an array, got ") + j.type_name());
    const auto text = [&](const json::Value* v, const std::string& at) -> std::string {
        if (!v || v->is_null()) return "";
        if (v->is_string()) return v->as_string();
        if (!v->is_array()) throw bad(at, std::string("must be a string or an array of parts, got ") + v->type_name());
        std::string out;
        for (const auto& part : v->as_array()) {
            const json::Value* t = part.is_object() ? part.find("text") : nullptr;
            if (!t || !t->is_string()) continue;  // only text parts carry text
            out += (out.empty() ? "" : "\n") + t->as_string();
        }
        return out;
    };
    const auto string_at = [&](const json::Value& obj, const char* key, const std::string& at) -> std::string {
        const json::Value* v = obj.find(key);
        if (!v || v->is_null()) return "";
        if (!v->is_string()) throw bad(at + "." + key, std::string("must be a string, got ") + v->type_name());
        return v->as_string();
    };
    std::vector<Message> out;
    for (std::size_t i = 0; i < j.as_array().size(); ++i) {
        const json::Value& m = j.as_array()[i];
        const std::string at = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) throw bad(at, std::string("must be an object, got ") + m.type_name());
        Message msg{string_at(m, "role", at), text(m.find("content"), at + ".content")};
        if (msg.role.empty()) throw bad(at + ".role", "is required");
        msg.tool_call_id = string_at(m, "tool_call_id", at);
        msg.name = string_at(m, "name", at);
        if (const json::Value* calls = m.find("tool_calls"); calls && !calls->is_null()) {
            if (!calls->is_array()) throw bad(at + ".tool_calls", std::string("must be an array, got ") + calls->type_name());
            for (std::size_t k = 0; k < calls->as_array().size(); ++k) {
                const json::Value& c = calls->as_array()[k];
                const std::string cat = at + ".tool_calls[" + std::to_string(k) + "]";
                const json::Value* fn = c.is_object() ? c.find("function") : nullptr;
                if (!fn || !fn->is_object()) throw bad(cat + ".function", "is required (an object with name and arguments)");
                ToolCall call{string_at(c, "id", cat), string_at(*fn, "name", cat + ".function"), json::Object{}};
                if (const json::Value* args = fn->find("arguments"); args && !args->is_null())
                    call.arguments = args->is_string() ? json::parse(args->as_string()) : *args;
                if (!call.arguments.is_object()) throw bad(cat + ".function.arguments", "must be a JSON object");
                msg.tool_calls.push_back(std::move(call));
            }
        }
        out.push_back(std::move(msg));
    }
    return out;
}

// How a conversation is rendered, beyond its messages.
struct RenderOptions {
    json::Array tools;                   // OpenAI's shape: [{"type": "function", "function": {name, description, parameters}}]
    bool add_generation_prompt = true;   // end where the assistant's reply begins
    bool enable_thinking = false;        // for templates with a reasoning switch (Qwen 3, SmolLM 3, ...)
    json::Object extra;                  // more values for the template (chat_template_kwargs); data, like messages
    std::string bos_token, eos_token;    // what the template writes for them (encode() takes the vocabulary's)
};

// A model's chat template: its own Jinja template, or a built-in family for files without one (or with
// one that does not parse).
class Template {
public:
    explicit Template(Format builtin) : format_(builtin) {}

    // A Jinja template's text (--chat-template-file): a parse error is a forge::Error naming line:column.
    explicit Template(std::string_view jinja_text)
        : format_(detect_format(jinja_text)), jinja_(std::make_shared<const jinja::Template>(jinja_text)) {
        system_role_ = writes_system_message();
    }

    // The file's template; the built-in family its text suggests when it has none or it does not parse.
    static Template of(const gguf::File& file) {
        const auto text = file.get_string("tokenizer.chat_template");
        if (!text) return Template(Format::chatml);
        try {
            return Template(std::string_view(*text));
        } catch (const Error&) {
            return Template(detect_format(*text));
        }
    }

    bool is_jinja() const { return jinja_ != nullptr; }
    // The family the template's text resembles (the built-in one when there is no Jinja template).
    Format format() const { return format_; }
    // The Jinja source (normalized newlines), empty for a built-in family.
    std::string_view source() const { return jinja_ ? std::string_view(jinja_->source()) : std::string_view(); }

    // The prompt in order: what the template wrote (markers) and what came from the messages, tools and
    // extra values (text).
    std::vector<PromptPart> render_parts(std::span<const Message> messages, const RenderOptions& opt = {}) const {
        if (!jinja_) return chat::render(format_, messages, opt.bos_token, opt.eos_token, opt.add_generation_prompt);
        std::vector<PromptPart> parts;
        for (auto& p : jinja_->render_parts(context(adapted(messages), opt), trusted(opt))) parts.push_back({std::move(p.text), p.from_template});
        return parts;
    }

    std::string render(std::span<const Message> messages, const RenderOptions& opt = {}) const { return to_text(render_parts(messages, opt)); }

    // Token ids of the prompt (see encode_parts), with bos_token and eos_token the vocabulary's.
    std::vector<std::int32_t> encode(const Tokenizer& tok, std::span<const Message> messages, RenderOptions opt = {}) const {
        const bool llama3 = format_ == Format::llama3 && !jinja_;
        opt.bos_token = token_text_or(tok, tok.bos(), jinja_ ? "" : llama3 ? "<|begin_of_text|>" : "<s>");
        opt.eos_token = token_text_or(tok, tok.eos(), jinja_ ? "" : llama3 ? "<|end_of_text|>" : "</s>");
        return encode_parts(tok, render_parts(messages, opt));
    }

    // The messages as the OpenAI API carries them (role, content, name, tool_call_id, tool_calls with
    // arguments as an object), which is what chat templates read.
    static json::Value messages_json(std::span<const Message> messages) {
        json::Array out;
        for (const auto& m : messages) {
            json::Value j = json::Object{};
            j.set("role", m.role);
            j.set("content", m.content);
            if (!m.name.empty()) j.set("name", m.name);
            if (!m.tool_call_id.empty()) j.set("tool_call_id", m.tool_call_id);
            if (!m.tool_calls.empty()) {
                json::Array calls;
                for (const auto& c : m.tool_calls) {
                    json::Value call = json::Object{};
                    call.set("type", "function");
                    json::Value fn = json::Object{};
                    fn.set("name", c.name);
                    fn.set("arguments", c.arguments);
                    call.set("function", std::move(fn));
                    if (!c.id.empty()) call.set("id", c.id);
                    calls.push_back(std::move(call));
                }
                j.set("tool_calls", std::move(calls));
            }
            out.push_back(std::move(j));
        }
        return out;
    }

private:
    // Whether the template writes a leading system message (llama.cpp probes the same way); templates
    // without a system role raise or drop it.
    bool writes_system_message() const {
        try {
            const Message probe[] = {{"system", "System message"}, {"user", "User message"}};
            return jinja_->render(context(probe, {}), trusted({})).find("System message") != std::string::npos;
        } catch (const Error&) {
            return false;
        }
    }

    // The messages as llama.cpp's server hands them to a template: "developer" is "system" (but for
    // gpt-oss, whose template knows the developer role), and where the template has no system role the
    // system text leads the next message.
    std::vector<Message> adapted(std::span<const Message> messages) const {
        std::vector<Message> out(messages.begin(), messages.end());
        if (jinja_->source().find("<|channel|>") == std::string::npos)
            for (auto& m : out)
                if (m.role == "developer") m.role = "system";
        if (!system_role_ && !out.empty() && out.front().role == "system") {
            if (out.size() > 1) out[1].content = out[0].content + "\n" + out[1].content;
            out.erase(out.begin());
        }
        return out;
    }

    static json::Value context(std::span<const Message> messages, const RenderOptions& opt) {
        json::Value c = json::Object{};
        c.set("messages", messages_json(messages));
        if (!opt.tools.empty()) c.set("tools", opt.tools);
        c.set("add_generation_prompt", opt.add_generation_prompt);
        c.set("enable_thinking", opt.enable_thinking);
        for (const auto& [k, v] : opt.extra) c.set(k, v);
        return c;
    }

    // forge's own values: bos/eos as the template may write them as tokens, and today's date as
    // llama.cpp offers it (date_string, which Llama 3.x templates print, and datetime).
    static json::Value trusted(const RenderOptions& opt) {
        json::Value t = json::Object{};
        t.set("bos_token", opt.bos_token);
        t.set("eos_token", opt.eos_token);
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        localtime_r(&now, &tm);
        char buf[64];
        t.set("date_string", std::string(buf, std::strftime(buf, sizeof buf, "%d %b %Y", &tm)));
        t.set("datetime", std::string(buf, std::strftime(buf, sizeof buf, "%b %d %Y", &tm)));
        return t;
    }

    Format format_;
    std::shared_ptr<const jinja::Template> jinja_;
    bool system_role_ = true;
};

// The prompt of `format`'s built-in rendering as token ids (kept for callers of the built-in families).
inline std::vector<std::int32_t> encode(const Tokenizer& tok, Format format, std::span<const Message> messages) {
    return Template(format).encode(tok, messages);
}

}  // namespace forge::chat
