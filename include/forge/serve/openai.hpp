#pragma once
// The OpenAI-compatible API: routes, request validation and response shapes. Requests are checked field
// by field before any work is queued: malformed JSON, a wrong type, a missing or out-of-range field and
// a prompt longer than the context are 400s naming the field, in OpenAI's error shape
// {"error":{"message","type","param","code"}}. Fields forge does not use are ignored, as OpenAI's own
// server ignores what it does not know.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/chat/template.hpp"
#include "forge/chat/tool_calls.hpp"
#include "forge/core/utf8.hpp"
#include "forge/grammar/json_schema.hpp"
#include "forge/grammar/token_mask.hpp"
#include "forge/json/json.hpp"
#include "forge/model/generate.hpp"
#include "forge/serve/http.hpp"
#include "forge/serve/metrics.hpp"
#include "forge/serve/scheduler.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge::serve {

// A request the API refuses, with the status and OpenAI error fields to answer with.
struct ApiError {
    ApiError(int status_, std::string message_, std::string type_ = "invalid_request_error", std::string param_ = {}, std::string code_ = {})
        : status(status_), message(std::move(message_)), type(std::move(type_)), param(std::move(param_)), code(std::move(code_)) {}
    int status;
    std::string message;
    std::string type;
    std::string param;  // empty: null
    std::string code;   // empty: null
};

inline std::string error_json(const ApiError& e) {
    const auto str_or_null = [](const std::string& s) { return s.empty() ? json::Value() : json::Value(s); };
    return json::dump(json::Object{{"error", json::Object{{"message", e.message}, {"type", e.type}, {"param", str_or_null(e.param)},
                                                          {"code", str_or_null(e.code)}}}});
}

// What a route writes to: the client's connection.
class Responder {
public:
    virtual ~Responder() = default;
    // Sends bytes; false when the client is gone.
    virtual bool send(std::string_view bytes) = 0;
    // The client has hung up (checked between tokens, so generation for nobody stops).
    virtual bool hung_up() = 0;
};

// The sampling and stopping fields shared by both completion routes.
struct CompletionOptions {
    std::optional<int> max_tokens;  // none: until EOS or the context is full
    SamplerParams sampling{};  // OpenAI's defaults, which are the library's: temperature 1, no filter
    std::vector<std::string> stop;
    bool stream = false;
    bool include_usage = false;  // stream_options.include_usage
    bool logprobs = false;       // each token's log-probability in the reply
    int top_logprobs = 0;        // and this many alternatives
    std::shared_ptr<const grammar::Grammar> grammar;  // the reply must match it (response_format, forced tool calls)
};

enum class ToolChoice { automatic, none, required, named };

struct ChatRequest {
    std::vector<chat::Message> messages;
    CompletionOptions options;
    json::Array tools;  // as sent: [{"type": "function", "function": {name, description, parameters}}], checked
    ToolChoice tool_choice = ToolChoice::automatic;
    std::string tool_name;  // the function tool_choice names
    bool parallel_tool_calls = true;
    bool response_format = false;  // response_format asked for structured output

    // Tools are offered to the model and its reply read for calls.
    bool uses_tools() const { return !tools.empty() && tool_choice != ToolChoice::none; }
    // The reply must be calls (tool_choice required, or naming a function).
    bool forces_call() const { return uses_tools() && (tool_choice == ToolChoice::required || tool_choice == ToolChoice::named); }
};

struct CompletionRequest {
    std::string prompt;
    CompletionOptions options;
};

namespace detail {

inline ApiError bad_field(const std::string& name, const std::string& what) {
    return {400, "'" + name + "' " + what, "invalid_request_error", name, {}};
}

// A present, non-null member of the request object.
inline const json::Value* member(const json::Value& body, std::string_view name) {
    const json::Value* v = body.find(name);
    return v && !v->is_null() ? v : nullptr;
}

// A sampling number, checked in the 32-bit float the sampler computes with: 1e-50 passes "greater than
// 0" as a double and is 0 as a float.
inline float float_in(const json::Value& body, const std::string& name, float fallback, double lo, double hi, bool lo_open = false) {
    const json::Value* v = member(body, name);
    if (!v) return fallback;
    if (!v->is_number()) throw bad_field(name, std::string("must be a number, got ") + v->type_name());
    const double d = v->as_number();
    const float f = float(d);
    if (!(lo_open ? f > float(lo) : f >= float(lo)) || !(f <= float(hi))) {
        const bool rounded = double(f) != d && (lo_open ? d > lo : d >= lo) && d <= hi;
        throw bad_field(name, "must be " + std::string(lo_open ? "greater than " : "at least ") + json::dump(lo) + " and at most " + json::dump(hi) + (rounded ? " as a 32-bit float (" + json::dump(d) + " rounds to " + json::dump(double(f)) + ")" : ""));
    }
    return f;
}

inline std::optional<std::int64_t> integer_in(const json::Value& body, const std::string& name, std::int64_t lo, std::int64_t hi) {
    const json::Value* v = member(body, name);
    if (!v) return std::nullopt;
    if (!v->is_number() || v->as_number() != std::floor(v->as_number()))
        throw bad_field(name, std::string("must be an integer, got ") + (v->is_number() ? "a fraction" : v->type_name()));
    const double d = v->as_number();
    if (d < double(lo) || d > double(hi)) throw bad_field(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return std::int64_t(d);
}

inline bool boolean(const json::Value& body, const std::string& name) {
    const json::Value* v = member(body, name);
    if (!v) return false;
    if (!v->is_bool()) throw bad_field(name, std::string("must be a boolean, got ") + v->type_name());
    return v->as_bool();
}

// `chat`: the chat route's fields (logprobs a boolean, top_logprobs up to 20) rather than the legacy
// completions route's (logprobs the number of alternatives, up to 5).
inline CompletionOptions parse_options(const json::Value& body, bool chat) {
    CompletionOptions o;
    if (chat) {
        o.logprobs = boolean(body, "logprobs");
        o.top_logprobs = int(integer_in(body, "top_logprobs", 0, kMaxTopLogprobs).value_or(0));
        if (member(body, "top_logprobs") && !o.logprobs) throw bad_field("top_logprobs", "needs \"logprobs\": true");
    } else if (const auto n = integer_in(body, "logprobs", 0, 5)) {
        o.logprobs = true;
        o.top_logprobs = int(*n);
    }
    constexpr std::int64_t kMaxTokens = 1 << 30;
    const auto max_tokens = member(body, "max_completion_tokens") ? integer_in(body, "max_completion_tokens", 0, kMaxTokens)
                                                                  : integer_in(body, "max_tokens", 0, kMaxTokens);
    if (max_tokens) o.max_tokens = int(*max_tokens);
    o.sampling.temperature = float_in(body, "temperature", o.sampling.temperature, 0, 2);
    o.sampling.top_p = float_in(body, "top_p", o.sampling.top_p, 0, 1, true);
    o.sampling.top_k = int(integer_in(body, "top_k", 0, 1 << 20).value_or(o.sampling.top_k));
    o.sampling.min_p = float_in(body, "min_p", o.sampling.min_p, 0, 0.999);
    o.sampling.repeat_penalty = float_in(body, "repeat_penalty", o.sampling.repeat_penalty, 0.001, 10);
    // OpenAI seeds are signed 64-bit; the sampler takes the same bits.
    const auto seed = integer_in(body, "seed", -(std::int64_t(1) << 53), std::int64_t(1) << 53);
    if (seed) o.sampling.seed = std::uint64_t(*seed);
    if (const json::Value* n = member(body, "n"); n && !(n->is_number() && n->as_number() == 1))
        throw bad_field("n", "must be 1: forge returns one choice");
    // Fields whose effect forge cannot give are refused rather than silently dropped.
    if (const json::Value* bias = member(body, "logit_bias"); bias && !(bias->is_object() && bias->as_object().empty()))
        throw bad_field("logit_bias", "is not supported");
    if (const json::Value* stop = member(body, "stop")) {
        constexpr std::size_t kMaxStops = 4;  // as OpenAI
        if (stop->is_string()) {
            o.stop.push_back(stop->as_string());
        } else if (stop->is_array()) {
            if (stop->as_array().size() > kMaxStops) throw bad_field("stop", "may hold at most " + std::to_string(kMaxStops) + " strings");
            for (const auto& s : stop->as_array()) {
                if (!s.is_string()) throw bad_field("stop", std::string("must hold strings, found ") + s.type_name());
                o.stop.push_back(s.as_string());
            }
        } else {
            throw bad_field("stop", std::string("must be a string or an array of strings, got ") + stop->type_name());
        }
        for (const auto& s : o.stop)
            if (s.empty()) throw bad_field("stop", "must not contain empty strings");
    }
    o.stream = boolean(body, "stream");
    if (const json::Value* so = member(body, "stream_options")) {
        if (!so->is_object()) throw bad_field("stream_options", std::string("must be an object, got ") + so->type_name());
        o.include_usage = boolean(*so, "include_usage");
    }
    return o;
}

// Builds a grammar for a request field; what the schema compiler refuses (an unsupported keyword, a
// grammar too large) is a 400 naming the field, with the compiler's words for where and why.
template <class Make>
std::shared_ptr<const grammar::Grammar> grammar_for(const std::string& field, Make make) {
    try {
        grammar::Builder b;
        grammar::JsonGrammar json(b);
        return std::make_shared<const grammar::Grammar>(b.build(make(b, json)));
    } catch (const Error& e) {
        throw bad_field(field, std::string("cannot be enforced: ") + e.what());
    }
}

// response_format: text (the default), json_object (any JSON object) or json_schema (JSON valid against
// the schema, enforced whether or not `strict` is set).
inline std::shared_ptr<const grammar::Grammar> response_format_grammar(const json::Value& body) {
    const json::Value* rf = member(body, "response_format");
    if (!rf) return nullptr;
    if (!rf->is_object()) throw bad_field("response_format", std::string("must be an object, got ") + rf->type_name());
    const json::Value* type = member(*rf, "type");
    if (!type || !type->is_string()) throw bad_field("response_format.type", "is required: 'text', 'json_object' or 'json_schema'");
    const std::string& t = type->as_string();
    if (t == "text") return nullptr;
    if (t == "json_object")
        return grammar_for("response_format", [](grammar::Builder&, grammar::JsonGrammar& json) { return json.document(json.any_object()); });
    if (t != "json_schema") throw bad_field("response_format.type", "must be 'text', 'json_object' or 'json_schema', got '" + t + "'");
    const json::Value* js = member(*rf, "json_schema");
    if (!js || !js->is_object()) throw bad_field("response_format.json_schema", "is required with type 'json_schema' (an object with 'schema')");
    if (const json::Value* name = member(*js, "name"); name && !name->is_string())
        throw bad_field("response_format.json_schema.name", std::string("must be a string, got ") + name->type_name());
    if (const json::Value* strict = member(*js, "strict"); strict && !strict->is_bool())
        throw bad_field("response_format.json_schema.strict", std::string("must be a boolean, got ") + strict->type_name());
    const json::Value* schema = member(*js, "schema");
    if (!schema) throw bad_field("response_format.json_schema.schema", "is required");
    if (!schema->is_object()) throw bad_field("response_format.json_schema.schema", std::string("must be an object, got ") + schema->type_name());
    return grammar_for("response_format.json_schema.schema",
                       [&](grammar::Builder&, grammar::JsonGrammar& json) { return json.document(json.schema(*schema)); });
}

inline json::Value parse_body(std::string_view body) {
    json::Value v;
    try {
        v = json::parse(body);
    } catch (const Error& e) {
        throw ApiError{400, std::string("the request body is not valid JSON: ") + e.what()};
    }
    if (!v.is_object()) throw ApiError{400, std::string("the request body must be a JSON object, got ") + v.type_name()};
    return v;
}

// A message's text: a string, or an array of {"type":"text","text":...} parts.
inline std::string message_text(const json::Value& content, const std::string& name) {
    if (content.is_string()) return content.as_string();
    if (!content.is_array()) throw bad_field(name, std::string("must be a string or an array of text parts, got ") + content.type_name());
    std::string text;
    for (const auto& part : content.as_array()) {
        const json::Value* type = part.find("type");
        const json::Value* t = part.find("text");
        if (!type || !type->is_string() || type->as_string() != "text" || !t || !t->is_string())
            throw bad_field(name, "parts must be {\"type\": \"text\", \"text\": string}: forge reads text only");
        text += t->as_string();
    }
    return text;
}

}  // namespace detail

namespace detail {

inline const std::string& string_in(const json::Value& obj, const std::string& key, const std::string& at) {
    const json::Value* v = member(obj, key);
    if (!v) throw bad_field(at + "." + key, "is required");
    if (!v->is_string()) throw bad_field(at + "." + key, std::string("must be a string, got ") + v->type_name());
    return v->as_string();
}

// OpenAI's function names: 1 to 64 letters, digits, '_' and '-'.
inline bool is_function_name(std::string_view n) {
    return !n.empty() && n.size() <= 64 &&
           std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

// An assistant message's tool_calls: [{id, type: "function", function: {name, arguments}}], arguments
// being a JSON object written as a string (as OpenAI's replies give them, and clients send them back).
inline std::vector<chat::ToolCall> message_tool_calls(const json::Value& calls, const std::string& at) {
    if (!calls.is_array()) throw bad_field(at, std::string("must be an array, got ") + calls.type_name());
    std::vector<chat::ToolCall> out;
    for (std::size_t j = 0; j < calls.as_array().size(); ++j) {
        const json::Value& c = calls.as_array()[j];
        const std::string cat = at + "[" + std::to_string(j) + "]";
        if (!c.is_object()) throw bad_field(cat, std::string("must be an object, got ") + c.type_name());
        if (const json::Value* type = member(c, "type"); type && !(type->is_string() && type->as_string() == "function"))
            throw bad_field(cat + ".type", "must be 'function'");
        const json::Value* fn = member(c, "function");
        if (!fn || !fn->is_object()) throw bad_field(cat + ".function", "is required (an object with name and arguments)");
        chat::ToolCall call{string_in(c, "id", cat), string_in(*fn, "name", cat + ".function"), json::Object{}};
        const std::string args = string_in(*fn, "arguments", cat + ".function");
        try {
            call.arguments = json::parse(args);
        } catch (const Error& e) {
            throw bad_field(cat + ".function.arguments", std::string("must be a JSON object in a string: ") + e.what());
        }
        if (!call.arguments.is_object())
            throw bad_field(cat + ".function.arguments", std::string("must be a JSON object in a string, got ") + call.arguments.type_name());
        out.push_back(std::move(call));
    }
    return out;
}

inline json::Array parse_tools(const json::Value& body) {
    const json::Value* tools = member(body, "tools");
    if (!tools) return {};
    if (!tools->is_array()) throw bad_field("tools", std::string("must be an array, got ") + tools->type_name());
    std::vector<std::string> names;
    for (std::size_t i = 0; i < tools->as_array().size(); ++i) {
        const json::Value& t = tools->as_array()[i];
        const std::string at = "tools[" + std::to_string(i) + "]";
        if (!t.is_object()) throw bad_field(at, std::string("must be an object, got ") + t.type_name());
        const json::Value* type = member(t, "type");
        if (!type || !type->is_string() || type->as_string() != "function") throw bad_field(at + ".type", "must be 'function'");
        const json::Value* fn = member(t, "function");
        if (!fn || !fn->is_object()) throw bad_field(at + ".function", "is required (an object with name, description, parameters)");
        const std::string name = string_in(*fn, "name", at + ".function");
        if (!is_function_name(name)) throw bad_field(at + ".function.name", "must be 1 to 64 letters, digits, '_' or '-', got '" + name + "'");
        if (std::find(names.begin(), names.end(), name) != names.end()) throw bad_field(at + ".function.name", "'" + name + "' is declared twice");
        names.push_back(name);
        if (const json::Value* d = member(*fn, "description"); d && !d->is_string())
            throw bad_field(at + ".function.description", std::string("must be a string, got ") + d->type_name());
        if (const json::Value* p = member(*fn, "parameters"); p && !p->is_object())
            throw bad_field(at + ".function.parameters", std::string("must be a JSON schema object, got ") + p->type_name());
        if (const json::Value* st = member(*fn, "strict"); st && !st->is_bool())
            throw bad_field(at + ".function.strict", std::string("must be a boolean, got ") + st->type_name());
    }
    return tools->as_array();
}

inline void parse_tool_choice(const json::Value& body, ChatRequest& r) {
    const json::Value* choice = member(body, "tool_choice");
    if (choice && choice->is_string()) {
        const std::string& c = choice->as_string();
        if (c == "auto") r.tool_choice = ToolChoice::automatic;
        else if (c == "none") r.tool_choice = ToolChoice::none;
        else if (c == "required") r.tool_choice = ToolChoice::required;
        else throw bad_field("tool_choice", "must be 'auto', 'none', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}, got '" + c + "'");
    } else if (choice && choice->is_object()) {
        const json::Value* type = member(*choice, "type");
        const json::Value* fn = member(*choice, "function");
        const json::Value* name = fn && fn->is_object() ? member(*fn, "name") : nullptr;
        if (!type || !type->is_string() || type->as_string() != "function" || !name || !name->is_string())
            throw bad_field("tool_choice", "must be {\"type\": \"function\", \"function\": {\"name\": ...}} when an object");
        const bool declared = std::any_of(r.tools.begin(), r.tools.end(), [&](const json::Value& t) {
            return t.at("function").at("name").as_string() == name->as_string();
        });
        if (!declared) throw bad_field("tool_choice", "names '" + name->as_string() + "', which is not in 'tools'");
        r.tool_choice = ToolChoice::named;
        r.tool_name = name->as_string();
    } else if (choice) {
        throw bad_field("tool_choice", std::string("must be a string or an object, got ") + choice->type_name());
    }
    if ((r.tool_choice == ToolChoice::required) && r.tools.empty()) throw bad_field("tool_choice", "'required' needs 'tools'");
}

// `messages`: roles system (or developer), user, assistant (with tool_calls) and tool (with tool_call_id).
inline std::vector<chat::Message> parse_messages(const json::Value& body) {
    std::vector<chat::Message> out;
    const json::Value* messages = member(body, "messages");
    if (!messages) throw bad_field("messages", "is required");
    if (!messages->is_array()) throw bad_field("messages", std::string("must be an array, got ") + messages->type_name());
    if (messages->as_array().empty()) throw bad_field("messages", "must not be empty");
    for (std::size_t i = 0; i < messages->as_array().size(); ++i) {
        const json::Value& m = messages->as_array()[i];
        const std::string at = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) throw bad_field(at, std::string("must be an object, got ") + m.type_name());
        const json::Value* role = member(m, "role");
        if (!role) throw bad_field(at + ".role", "is required");
        if (!role->is_string()) throw bad_field(at + ".role", std::string("must be a string, got ") + role->type_name());
        std::string r_name = role->as_string();
        if (r_name == "developer") r_name = "system";  // OpenAI's newer name for the system role
        if (r_name != "system" && r_name != "user" && r_name != "assistant" && r_name != "tool")
            throw bad_field(at + ".role", "must be 'system', 'user', 'assistant' or 'tool', got '" + role->as_string() + "'");
        const json::Value* content = member(m, "content");
        if (!content && r_name != "assistant") throw bad_field(at + ".content", "is required");
        chat::Message message{r_name, content ? message_text(*content, at + ".content") : std::string()};
        if (const json::Value* name = member(m, "name")) {
            if (!name->is_string()) throw bad_field(at + ".name", std::string("must be a string, got ") + name->type_name());
            message.name = name->as_string();
        }
        if (r_name == "tool") message.tool_call_id = string_in(m, "tool_call_id", at);
        if (const json::Value* calls = member(m, "tool_calls")) {
            if (r_name != "assistant") throw bad_field(at + ".tool_calls", "belongs to assistant messages");
            message.tool_calls = message_tool_calls(*calls, at + ".tool_calls");
        }
        out.push_back(std::move(message));
    }
    return out;
}

}  // namespace detail

inline ChatRequest parse_chat_request(std::string_view body_text) {
    const json::Value body = detail::parse_body(body_text);
    ChatRequest r;
    r.messages = detail::parse_messages(body);
    r.options = detail::parse_options(body, true);
    r.options.grammar = detail::response_format_grammar(body);
    r.response_format = r.options.grammar != nullptr;
    r.tools = detail::parse_tools(body);
    detail::parse_tool_choice(body, r);
    if (const json::Value* p = detail::member(body, "parallel_tool_calls")) {
        if (!p->is_bool()) throw detail::bad_field("parallel_tool_calls", std::string("must be a boolean, got ") + p->type_name());
        r.parallel_tool_calls = p->as_bool();
    }
    if (r.forces_call() && r.response_format)
        throw detail::bad_field("response_format", "cannot be combined with a forced tool call (tool_choice 'required' or naming a function)");
    return r;
}

inline CompletionRequest parse_completion_request(std::string_view body_text) {
    const json::Value body = detail::parse_body(body_text);
    CompletionRequest r;
    const json::Value* prompt = detail::member(body, "prompt");
    if (!prompt) throw detail::bad_field("prompt", "is required");
    if (prompt->is_string()) {
        r.prompt = prompt->as_string();
    } else if (prompt->is_array() && prompt->as_array().size() == 1 && prompt->as_array()[0].is_string()) {
        r.prompt = prompt->as_array()[0].as_string();
    } else {
        throw detail::bad_field("prompt", "must be a string (or an array of one string)");
    }
    r.options = detail::parse_options(body, false);
    if (detail::boolean(body, "echo")) throw detail::bad_field("echo", "is not supported: the reply never repeats the prompt");
    if (const json::Value* b = detail::member(body, "best_of"); b && !(b->is_number() && b->as_number() == 1))
        throw detail::bad_field("best_of", "must be 1: forge returns one choice");
    if (const json::Value* suffix = detail::member(body, "suffix"); suffix && !(suffix->is_string() && suffix->as_string().empty()))
        throw detail::bad_field("suffix", "is not supported");
    return r;
}

// The `logprobs` of a reply or of a stream's chunk, from the tokens added since the last take(): the chat
// route's shape ({"content": [{token, logprob, bytes, top_logprobs}]}) or the legacy completions route's
// ({tokens, token_logprobs, top_logprobs, text_offset}). Log-probabilities are the model's (log-softmax of
// its logits at temperature 1); a token's text is its bytes as valid UTF-8 (U+FFFD for part of a
// character), its exact bytes under "bytes".
class LogprobsWriter {
public:
    LogprobsWriter(const Tokenizer& tok, bool chat) : tok_(tok), chat_(chat) {}

    void add(std::int32_t id, float logprob, std::span<const TokenLogprob> top) {
        const std::string bytes = tok_.decode(id, true);
        if (chat_) {
            json::Object e = entry(bytes, logprob);
            json::Array alternatives;
            for (const auto& t : top) alternatives.emplace_back(entry(tok_.decode(t.id, true), t.logprob));
            e.emplace_back("top_logprobs", std::move(alternatives));
            content_.emplace_back(std::move(e));
        } else {
            tokens_.emplace_back(valid_utf8(bytes));
            token_logprobs_.emplace_back(double(logprob));
            json::Object alternatives;
            for (const auto& t : top) alternatives.emplace_back(valid_utf8(tok_.decode(t.id, true)), double(t.logprob));
            top_.emplace_back(std::move(alternatives));
            offsets_.emplace_back(offset_);
            offset_ += bytes.size();
        }
    }

    json::Value take() {
        json::Value v = chat_ ? json::Value(json::Object{{"content", std::move(content_)}})
                              : json::Value(json::Object{{"tokens", std::move(tokens_)},
                                                         {"token_logprobs", std::move(token_logprobs_)},
                                                         {"top_logprobs", std::move(top_)},
                                                         {"text_offset", std::move(offsets_)}});
        content_.clear(), tokens_.clear(), token_logprobs_.clear(), top_.clear(), offsets_.clear();
        return v;
    }

private:
    static json::Object entry(const std::string& bytes, float logprob) {
        json::Array raw;
        for (const char c : bytes) raw.emplace_back(int(static_cast<unsigned char>(c)));
        return json::Object{{"token", valid_utf8(bytes)}, {"logprob", double(logprob)}, {"bytes", std::move(raw)}};
    }

    const Tokenizer& tok_;
    bool chat_;
    json::Array content_, tokens_, token_logprobs_, top_, offsets_;
    std::size_t offset_ = 0;  // of the next token's text in the completion
};

namespace detail {

// a == b in a time that depends on their lengths only, not on where they differ: an API key compared
// byte by byte with an early exit tells an attacker, by the reply's timing, how much of a guess is right.
inline bool equal_in_constant_time(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

}  // namespace detail

// "*", or an origin as a browser sends it in its Origin header: scheme://host[:port], nothing after.
inline bool is_cors_origin(std::string_view o) {
    if (o == "*") return true;
    const std::size_t sep = o.find("://");
    if (sep == std::string_view::npos || sep == 0 || sep + 3 == o.size()) return false;
    const auto scheme_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.'; };
    const auto host_char = [](char c) { return c > ' ' && c < 127 && std::string_view("/?#@\\").find(c) == std::string_view::npos; };
    return std::all_of(o.begin(), o.begin() + std::ptrdiff_t(sep), scheme_char) && std::all_of(o.begin() + std::ptrdiff_t(sep + 3), o.end(), host_char);
}

struct ApiOptions {
    // Every route but /health (and CORS preflight) wants `Authorization: Bearer <api_key>` and answers 401
    // otherwise, as OpenAI does. Empty: no key.
    std::string api_key{};
    // Origins whose browser pages may call the API ("https://app.example:8443", or "*" for any). Empty:
    // replies carry no CORS headers, so browsers refuse cross-origin calls.
    std::vector<std::string> cors_origins{};
    // Given a line for each finished completion: its tokens, time and the slots' state after it.
    std::function<void(std::string_view)> log{};
};

// The routes, served from one tokenizer and one scheduler.
class Api {
public:
    // `chat_template` renders conversations (and their tools); its text says how the model writes tool calls.
    Api(const Tokenizer& tok, Scheduler& scheduler, chat::Template chat_template, std::string model_id, ApiOptions options = {})
        : tok_(tok), scheduler_(scheduler), template_(std::move(chat_template)), tool_format_(chat::tool_call_format(template_.source())),
          model_id_(std::move(model_id)), options_(std::move(options)) {}

    const chat::Template& chat_template() const { return template_; }
    chat::ToolCallFormat tool_call_format() const { return tool_format_; }
    const ApiOptions& options() const { return options_; }
    const std::string& model_id() const { return model_id_; }
    // Requests still waiting for a slot are refused with 503; running ones may go on for `deadline`,
    // then stop, and their replies say the server shut down.
    void stop(std::chrono::milliseconds deadline) {
        stop_at_ = (std::chrono::steady_clock::now() + deadline).time_since_epoch().count();
        scheduler_.stop();
    }

    // Answers `req`; false when the connection must close (the client is gone or a reply broke off).
    bool handle(const http::Request& req, Responder& client) {
        StatusRecorder out(client);
        bool keep = false;
        try {
            keep = route(req, out);
        } catch (const ApiError& e) {
            keep = out.send(error_response(e, req.keep_alive, cors_headers(req))) && req.keep_alive;
        } catch (const std::exception& e) {
            keep = out.send(error_response({500, e.what(), "server_error"}, req.keep_alive, cors_headers(req))) && req.keep_alive;
        }
        metrics_.count_request(route_label(req.path()), out.status);
        return keep;
    }

    const Metrics& metrics() const { return metrics_; }

    static std::string error_response(const ApiError& e, bool keep_alive, const http::Headers& extra = {}) {
        return http::response(e.status, "application/json", error_json(e), keep_alive, extra);
    }

private:
    struct Route {
        std::string_view path, method;
    };
    static constexpr Route kRoutes[] = {{"/v1/chat/completions", "POST"}, {"/v1/completions", "POST"}, {"/v1/models", "GET"},
                                        {"/health", "GET"},  {"/metrics", "GET"},  {"/tokenize", "POST"}, {"/detokenize", "POST"},
                                        {"/apply-template", "POST"}};

    static const Route* find_route(std::string_view path) {
        for (const auto& r : kRoutes)
            if (r.path == path) return &r;
        return nullptr;
    }
    static std::string_view route_label(std::string_view path) { return find_route(path) ? path : "other"; }

    // Passes a reply on and notes its status; 499 until a reply begins (the client left before one).
    class StatusRecorder final : public Responder {
    public:
        explicit StatusRecorder(Responder& out) : out_(out) {}
        bool send(std::string_view bytes) override {
            if (status == 499 && bytes.size() >= 12 && bytes.substr(0, 5) == "HTTP/") status = std::atoi(std::string(bytes.substr(9, 3)).c_str());
            return out_.send(bytes);
        }
        bool hung_up() override { return out_.hung_up(); }
        int status = 499;

    private:
        Responder& out_;
    };

    // A reply's CORS headers: Access-Control-Allow-Origin when the request's Origin is allowed; none
    // without --cors-origin. With a list of origins the answer depends on Origin, which caches must know.
    http::Headers cors_headers(const http::Request& req) const {
        const auto& allowed = options_.cors_origins;
        if (allowed.empty()) return {};
        const bool any = std::find(allowed.begin(), allowed.end(), "*") != allowed.end();
        http::Headers h;
        if (!any) h.emplace_back("Vary", "Origin");
        const std::string* origin = req.header("origin");
        if (origin && (any || std::find(allowed.begin(), allowed.end(), *origin) != allowed.end()))
            h.emplace_back("Access-Control-Allow-Origin", any ? "*" : *origin);
        return h;
    }

    static http::Headers joined(http::Headers a, const http::Headers& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    bool send_error(Responder& out, const http::Request& req, const ApiError& e, const http::Headers& extra) const {
        return out.send(error_response(e, req.keep_alive, joined(extra, cors_headers(req)))) && req.keep_alive;
    }

    bool route(const http::Request& req, Responder& out) {
        const std::string_view path = req.path();
        const Route* r = find_route(path);
        if (!r) throw ApiError{404, "no route for " + req.method + " " + std::string(path), "invalid_request_error", {}, "not_found"};
        const std::string allow = std::string(r->method) + ", OPTIONS";
        // A browser's CORS preflight carries no credentials, so it is answered before the key is asked for.
        if (req.method == "OPTIONS") {
            http::Headers h = joined({{"Allow", allow}}, cors_headers(req));
            if (h.back().first == "Access-Control-Allow-Origin")
                h = joined(h, {{"Access-Control-Allow-Methods", allow},
                               {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                               {"Access-Control-Max-Age", "86400"}});
            return out.send(http::response(204, {}, {}, req.keep_alive, h)) && req.keep_alive;
        }
        if (req.method != r->method) {
            const ApiError e{405, std::string(path) + " accepts " + std::string(r->method) + ", not " + req.method, "invalid_request_error", {},
                             "method_not_allowed"};
            return send_error(out, req, e, {{"Allow", allow}});
        }
        if (path == "/health") return send_json(out, req, health());
        if (!options_.api_key.empty()) {
            const std::string* auth = req.header("authorization");
            constexpr std::string_view kBearer = "Bearer ";
            const bool ok = auth && auth->size() >= kBearer.size() && auth->compare(0, kBearer.size(), kBearer) == 0 &&
                            detail::equal_in_constant_time(std::string_view(*auth).substr(kBearer.size()), options_.api_key);
            if (!ok) {
                const ApiError e{401, "missing or incorrect API key: send the header 'Authorization: Bearer <key>'", "invalid_request_error",
                                 {}, "invalid_api_key"};
                return send_error(out, req, e, {{"WWW-Authenticate", "Bearer"}});
            }
        }
        if (path == "/metrics")
            return out.send(http::response(200, "text/plain; version=0.0.4; charset=utf-8", metrics_.text(scheduler_.stats()), req.keep_alive,
                                           cors_headers(req))) &&
                   req.keep_alive;
        if (path == "/v1/models") return send_json(out, req, models());
        if (path == "/tokenize") return send_json(out, req, tokenize(detail::parse_body(req.body)));
        if (path == "/detokenize") return send_json(out, req, detokenize(detail::parse_body(req.body)));
        if (path == "/apply-template") return send_json(out, req, apply_template(detail::parse_body(req.body)));
        if (path == "/v1/chat/completions") {
            ChatRequest c = parse_chat_request(req.body);
            if (c.forces_call()) c.options.grammar = forced_call_grammar(c);
            std::optional<ToolReading> tools;
            if (c.uses_tools()) tools = ToolReading{tool_format_, c.parallel_tool_calls && c.tool_choice != ToolChoice::named};
            chat::RenderOptions render;
            if (c.uses_tools()) render.tools = c.tools;
            return complete(req, out, encode_chat(c.messages, render), c.options, "messages", true, tools);
        }
        CompletionRequest c = parse_completion_request(req.body);
        const auto prompt = encode_text(c.prompt);
        return complete(req, out, prompt, c.options, "prompt", false);
    }

    // The conversation's prompt; what the template refuses (raise_exception, a sandbox limit) is the
    // request's fault, a 400.
    std::vector<std::int32_t> encode_chat(std::span<const chat::Message> messages, const chat::RenderOptions& render) const {
        try {
            return template_.encode(tok_, messages, render);
        } catch (const Error& e) {
            throw detail::bad_field("messages", std::string("cannot be rendered by the model's chat template: ") + e.what());
        }
    }

    // POST /apply-template, as llama-server's: {messages, tools, add_generation_prompt (default true),
    // enable_thinking} -> {"prompt"}, the model's template rendering them. forge's extension: with
    // `chat_template` (and `bos_token`, `eos_token`, default empty) that template renders them instead.
    json::Value apply_template(const json::Value& body) const {
        chat::RenderOptions render;
        const std::vector<chat::Message> messages = detail::parse_messages(body);
        render.tools = detail::parse_tools(body);
        if (detail::member(body, "add_generation_prompt")) render.add_generation_prompt = detail::boolean(body, "add_generation_prompt");
        if (detail::member(body, "enable_thinking")) render.enable_thinking = detail::boolean(body, "enable_thinking");
        const json::Value* text = detail::member(body, "chat_template");
        for (const char* field : {"bos_token", "eos_token"})
            if (const json::Value* v = detail::member(body, field); v && !v->is_string())
                throw detail::bad_field(field, std::string("must be a string, got ") + v->type_name());
        try {
            if (!text) {
                render.bos_token = chat::token_text_or(tok_, tok_.bos(), "");
                render.eos_token = chat::token_text_or(tok_, tok_.eos(), "");
                return json::Object{{"prompt", template_.render(messages, render)}};
            }
            if (!text->is_string()) throw detail::bad_field("chat_template", std::string("must be a string, got ") + text->type_name());
            if (const json::Value* b = detail::member(body, "bos_token")) render.bos_token = b->as_string();
            if (const json::Value* e = detail::member(body, "eos_token")) render.eos_token = e->as_string();
            return json::Object{{"prompt", chat::Template(std::string_view(text->as_string())).render(messages, render)}};
        } catch (const Error& e) {
            throw detail::bad_field(text ? "chat_template" : "messages", std::string("cannot be rendered: ") + e.what());
        }
    }

    std::vector<std::int32_t> encode_text(const std::string& text) const {
        try {
            auto ids = tok_.encode(text, tok_.add_bos());
            if (ids.empty()) throw detail::bad_field("prompt", "is empty and this model's vocabulary adds no BOS token");
            return ids;
        } catch (const Error& e) {
            throw detail::bad_field("prompt", std::string("cannot be tokenized: ") + e.what());
        }
    }

    bool send_json(Responder& out, const http::Request& req, const json::Value& v) const {
        return out.send(http::response(200, "application/json", json::dump(v), req.keep_alive, cors_headers(req))) && req.keep_alive;
    }

    // As llama-server's: {"content", "add_special"} -> {"tokens"}; add_special adds BOS where the model does.
    json::Value tokenize(const json::Value& body) const {
        const json::Value* content = detail::member(body, "content");
        if (!content) throw detail::bad_field("content", "is required");
        if (!content->is_string()) throw detail::bad_field("content", std::string("must be a string, got ") + content->type_name());
        std::vector<std::int32_t> ids;
        try {
            ids = tok_.encode(content->as_string(), detail::boolean(body, "add_special") && tok_.add_bos());
        } catch (const Error& e) {
            throw detail::bad_field("content", std::string("cannot be tokenized: ") + e.what());
        }
        json::Array tokens;
        for (const auto id : ids) tokens.emplace_back(int(id));
        return json::Object{{"tokens", std::move(tokens)}};
    }

    // {"tokens"} -> {"content"}: the text of the ids (special tokens' text left out, as in a reply).
    json::Value detokenize(const json::Value& body) const {
        const json::Value* tokens = detail::member(body, "tokens");
        if (!tokens) throw detail::bad_field("tokens", "is required");
        if (!tokens->is_array()) throw detail::bad_field("tokens", std::string("must be an array, got ") + tokens->type_name());
        std::vector<std::int32_t> ids;
        for (const auto& t : tokens->as_array()) {
            if (!t.is_number() || t.as_number() != std::floor(t.as_number()) || t.as_number() < 0 || t.as_number() >= tok_.vocab().size())
                throw detail::bad_field("tokens", "must hold token ids between 0 and " + std::to_string(tok_.vocab().size() - 1));
            ids.push_back(std::int32_t(t.as_number()));
        }
        return json::Object{{"content", valid_utf8(tok_.decode(ids))}};
    }

    json::Value health() const {
        const auto s = scheduler_.stats();
        return json::Object{{"status", "ok"}, {"slots", s.slots}, {"slots_running_at_most", s.running}, {"slots_busy", s.busy}, {"queued", s.queued},
                            {"served", std::size_t(s.served)}, {"cached_tokens", s.cached_tokens}};
    }

    json::Value models() const {
        return json::Object{{"object", "list"},
                            {"data", json::Array{json::Object{{"id", model_id_}, {"object", "model"}, {"created", std::int64_t(started_)},
                                                              {"owned_by", "forge"}, {"context_length", scheduler_.context()}}}}};
    }

    // The grammar of the calls a request forces: any of its tools (or the one it names), arguments valid
    // against the tool's parameter schema, in the template's format.
    std::shared_ptr<const grammar::Grammar> forced_call_grammar(const ChatRequest& c) const {
        std::vector<chat::ToolSchema> schemas;
        std::vector<std::size_t> index;  // of each schema's tool in the request
        for (std::size_t i = 0; i < c.tools.size(); ++i) {
            const json::Value& fn = c.tools[i].at("function");
            const std::string& name = fn.at("name").as_string();
            if (c.tool_choice == ToolChoice::named && name != c.tool_name) continue;
            const json::Value* params = detail::member(fn, "parameters");
            schemas.push_back({name, params ? *params : json::Value()});
            index.push_back(i);
        }
        try {
            return std::make_shared<const grammar::Grammar>(
                chat::tool_call_grammar(tool_format_, schemas, c.parallel_tool_calls && c.tool_choice != ToolChoice::named));
        } catch (const chat::ToolSchemaError& e) {
            throw detail::bad_field("tools[" + std::to_string(index[e.index]) + "].function.parameters", std::string("cannot be enforced: ") + e.what());
        } catch (const Error& e) {
            throw detail::bad_field("tools", std::string("cannot be enforced: ") + e.what());
        }
    }

    // How a chat reply is read for tool calls: in the template's format, keeping one call or all.
    struct ToolReading {
        chat::ToolCallFormat format;
        bool parallel;
    };

    // A call as OpenAI's replies carry it (arguments as a string of JSON); `index` for a stream's delta.
    static json::Value tool_call_json(const chat::ToolCall& c, std::optional<std::size_t> index) {
        json::Object o;
        if (index) o.emplace_back("index", *index);
        o.emplace_back("id", c.id);
        o.emplace_back("type", "function");
        o.emplace_back("function", json::Object{{"name", c.name}, {"arguments", json::dump(c.arguments)}});
        return o;
    }

    // One completion, streamed or whole. `chat` picks the chat shapes over the text-completion ones;
    // `tools`, a chat reply read for tool calls.
    bool complete(const http::Request& req, Responder& out, const std::vector<std::int32_t>& prompt, const CompletionOptions& opt,
                  const char* prompt_field, bool chat, std::optional<ToolReading> tools = std::nullopt) {
        const int context = scheduler_.context();
        if (prompt.size() >= std::size_t(context))
            throw ApiError{400,
                           "the prompt has " + std::to_string(prompt.size()) + " tokens but this model's context holds " +
                               std::to_string(context) + " (the reply needs at least one more)",
                           "invalid_request_error", prompt_field, "context_length_exceeded"};
        GenerationParams params;
        params.max_tokens = std::min(opt.max_tokens.value_or(context), context - int(prompt.size()));
        params.sampling = opt.sampling;
        params.stop = opt.stop;
        params.top_logprobs = opt.top_logprobs;
        params.abort = [&] { return past_stop_deadline() || out.hung_up(); };
        if (opt.grammar) params.constraint.emplace(opt.grammar, vocab_trie());
        try {
            Sampler::check(params.sampling);  // refused here, as a 400, rather than after a stream has begun
        } catch (const Error& e) {
            throw ApiError{400, e.what()};
        }

        const std::string id = (chat ? "chatcmpl-" : "cmpl-") + next_id();
        const std::int64_t created = std::time(nullptr);
        const auto queued_at = std::chrono::steady_clock::now();
        auto lease = scheduler_.acquire(prompt, [&] { return out.hung_up(); });
        if (!lease) {
            if (out.hung_up()) return false;
            throw ApiError{503, "the server is shutting down", "server_error", {}, "shutting_down"};
        }
        const double queue_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - queued_at).count();
        // The slot's sequence keeps what it shares with this prompt; only the rest is fed.
        const int cached = lease->model().keep_prefix_of(prompt);
        const auto to_feed = std::span(prompt).subspan(std::size_t(cached));
        metrics_.prompt_tokens += prompt.size();
        metrics_.cached_prompt_tokens += std::uint64_t(cached);
        bool first_token = true;
        const auto count_token = [&](const TokenEvent& e) {
            if (e.id == tokenizer::kNoToken) return;
            ++metrics_.generated_tokens;
            if (std::exchange(first_token, false))
                metrics_.time_to_first_token.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - queued_at).count());
        };
        struct DurationObserver {
            Histogram& h;
            std::chrono::steady_clock::time_point since;
            ~DurationObserver() { h.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count()); }
        } observe_duration{metrics_.request_duration, queued_at};
        const auto usage = [&](const GenerationResult& r) {
            return json::Object{{"prompt_tokens", prompt.size()},
                                {"completion_tokens", r.tokens.size()},
                                {"total_tokens", prompt.size() + r.tokens.size()},
                                {"prompt_tokens_details", json::Object{{"cached_tokens", cached}}}};
        };

        // The log's line for a finished completion (after its slot is free, so the slots' numbers are current).
        const auto log_finished = [&](const GenerationResult& r) {
            if (!options_.log) return;
            const auto s = scheduler_.stats();
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - queued_at).count();
            char line[384];
            std::snprintf(line, sizeof line, "%s: prompt %zu tokens (%d cached), %zu generated (%s) in %.0f ms; slots %d of %d busy, %d queued, %zu tokens cached",
                          id.c_str(), prompt.size(), cached, r.tokens.size(), std::string(finish_reason_name(r.finish)).c_str(), ms, s.busy,
                          s.running, s.queued, s.cached_tokens);
            options_.log(line);
        };

        // Tokens wait here until the text they made is sent (text held back for a stop string waits).
        LogprobsWriter logprobs(tok_, chat);
        const auto chunk = [&](json::Value delta_or_text, json::Value finish) {
            json::Object choice{{"index", 0}};
            if (chat) choice.emplace_back("delta", std::move(delta_or_text));
            else choice.emplace_back("text", std::move(delta_or_text));
            choice.emplace_back("logprobs", opt.logprobs ? logprobs.take() : json::Value());
            choice.emplace_back("finish_reason", std::move(finish));
            return head_fields(id, chat ? "chat.completion.chunk" : "text_completion", created, json::Array{json::Value(std::move(choice))});
        };

        if (!opt.stream) {
            const GenerationResult r = generate(lease->model(), tok_, to_feed, params, [&](const TokenEvent& e) {
                count_token(e);
                return true;
            });
            lease.reset();  // the slot is free before the reply is written, however slowly the client reads it
            log_finished(r);
            if (r.finish == FinishReason::cancelled) {
                if (past_stop_deadline()) out.send(error_response(shut_down(r), false, cors_headers(req)));
                return false;
            }
            json::Object choice{{"index", 0}};
            std::string_view finish = finish_reason_name(r.finish);
            if (chat && tools) {
                chat::ParsedReply parsed = chat::parse_tool_calls(tools->format, r.text);
                if (!tools->parallel && parsed.tool_calls.size() > 1) parsed.tool_calls.erase(parsed.tool_calls.begin() + 1, parsed.tool_calls.end());
                json::Object message{{"role", "assistant"}};
                // Only calls: content is null, as OpenAI's.
                message.emplace_back("content", parsed.tool_calls.empty() || !parsed.content.empty() ? json::Value(parsed.content) : json::Value());
                if (!parsed.tool_calls.empty()) {
                    json::Array calls;
                    for (const auto& c : parsed.tool_calls) calls.push_back(tool_call_json(c, std::nullopt));
                    message.emplace_back("tool_calls", std::move(calls));
                    finish = "tool_calls";
                }
                choice.emplace_back("message", std::move(message));
            } else if (chat) {
                choice.emplace_back("message", json::Object{{"role", "assistant"}, {"content", r.text}});
            } else {
                choice.emplace_back("text", r.text);
            }
            if (opt.logprobs)
                for (std::size_t i = 0; i < r.tokens.size(); ++i)
                    logprobs.add(r.tokens[i], r.logprobs[i], opt.top_logprobs > 0 ? std::span<const TokenLogprob>(r.top_logprobs[i]) : std::span<const TokenLogprob>());
            choice.emplace_back("logprobs", opt.logprobs ? logprobs.take() : json::Value());
            choice.emplace_back("finish_reason", finish);
            json::Value body = head_fields(id, chat ? "chat.completion" : "text_completion", created, json::Array{json::Value(std::move(choice))});
            body.set("usage", usage(r));
            body.set("timings", timings(r, queue_ms, cached));
            return send_json(out, req, body);
        }

        bool alive = out.send(http::sse_head(req.keep_alive, cors_headers(req)));
        if (alive && chat) alive = out.send(http::sse_event(json::dump(chunk(json::Object{{"role", "assistant"}, {"content", ""}}, {}))));
        if (!alive) return false;
        // With tools, text goes through the call parser first; calls go out whole, each in its own delta.
        std::optional<chat::ToolCallParser> parser;
        if (chat && tools) parser.emplace(tools->format);
        std::size_t calls_sent = 0;
        const auto send_parsed = [&](chat::ParsedReply p) {
            bool ok = p.content.empty() || out.send(http::sse_event(json::dump(chunk(json::Object{{"content", p.content}}, {}))));
            for (const auto& c : p.tool_calls) {
                if (!ok || (!tools->parallel && calls_sent == 1)) break;
                const json::Object delta{{"tool_calls", json::Array{tool_call_json(c, calls_sent++)}}};
                ok = out.send(http::sse_event(json::dump(chunk(delta, {}))));
            }
            return ok;
        };
        GenerationResult r;
        try {
            r = generate(lease->model(), tok_, to_feed, params, [&](const TokenEvent& e) {
                count_token(e);
                if (opt.logprobs && e.id != tokenizer::kNoToken) logprobs.add(e.id, e.logprob, e.top);
                if (e.text.empty()) return true;
                if (parser) return send_parsed(parser->feed(e.text));
                const json::Value c = chat ? chunk(json::Object{{"content", e.text}}, {}) : chunk(e.text, {});
                return out.send(http::sse_event(json::dump(c)));
            });
        } catch (const std::exception& e) {
            // The status line is gone already: the error becomes the stream's last event.
            out.send(http::sse_event(error_json({500, e.what(), "server_error"})) + http::sse_event("[DONE]") + std::string(http::kLastChunk));
            return false;
        }
        lease.reset();
        log_finished(r);
        if (r.finish == FinishReason::cancelled) {
            if (past_stop_deadline()) out.send(http::sse_event(error_json(shut_down(r))) + http::sse_event("[DONE]") + std::string(http::kLastChunk));
            return false;
        }
        if (parser && !send_parsed(parser->finish())) return false;
        const std::string_view finish = calls_sent > 0 ? "tool_calls" : finish_reason_name(r.finish);
        std::string tail = http::sse_event(json::dump(chunk(chat ? json::Value(json::Object{}) : json::Value(""), finish)));
        if (opt.include_usage) {
            json::Value u = head_fields(id, chat ? "chat.completion.chunk" : "text_completion", created, json::Array{});
            u.set("usage", usage(r));
            u.set("timings", timings(r, queue_ms, cached));
            tail += http::sse_event(json::dump(u));
        }
        tail += http::sse_event("[DONE]");
        tail += http::kLastChunk;
        return out.send(tail) && req.keep_alive;
    }

    json::Value head_fields(const std::string& id, const char* object, std::int64_t created, json::Array choices) const {
        return json::Object{{"id", id}, {"object", object}, {"created", created}, {"model", model_id_}, {"choices", std::move(choices)}};
    }

    // forge's own: where the time went.
    // `cached`: prompt tokens the slot already held, not fed again.
    static json::Value timings(const GenerationResult& r, double queue_ms, int cached) {
        const auto per_second = [](double n, double s) { return s > 0 ? n / s : 0.0; };
        return json::Object{{"queue_ms", queue_ms},
                            {"cached_tokens", cached},
                            {"prefill_tokens", r.prompt_tokens},
                            {"prefill_ms", r.prefill_seconds * 1e3},
                            {"prefill_tokens_per_second", per_second(r.prompt_tokens, r.prefill_seconds)},
                            {"decode_ms", r.decode_seconds * 1e3},
                            {"decode_tokens_per_second", per_second(double(r.tokens.size()), r.decode_seconds)}};
    }

    std::string next_id() {
        char buf[24];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id_base_ + id_counter_.fetch_add(1)));
        return buf;
    }

    // The vocabulary as constrained decoding walks it: built on the first request that needs it, then shared.
    std::shared_ptr<const grammar::VocabTrie> vocab_trie() const {
        std::call_once(vocab_trie_once_, [&] { vocab_trie_ = std::make_shared<const grammar::VocabTrie>(tok_); });
        return vocab_trie_;
    }

    bool past_stop_deadline() const { return std::chrono::steady_clock::now().time_since_epoch().count() > stop_at_.load(); }

    // Where a generation cut short by the shutdown deadline says so.
    static ApiError shut_down(const GenerationResult& r) {
        return {503, "the server shut down before this generation finished (" + std::to_string(r.tokens.size()) + " tokens generated)",
                "server_error", {}, "shutting_down"};
    }

    const Tokenizer& tok_;
    Scheduler& scheduler_;
    std::atomic<std::chrono::steady_clock::rep> stop_at_{std::chrono::steady_clock::time_point::max().time_since_epoch().count()};
    chat::Template template_;
    chat::ToolCallFormat tool_format_;
    std::string model_id_;
    ApiOptions options_;
    Metrics metrics_;
    mutable std::once_flag vocab_trie_once_;
    mutable std::shared_ptr<const grammar::VocabTrie> vocab_trie_;
    std::time_t started_ = std::time(nullptr);
    std::uint64_t id_base_ = std::uint64_t(std::random_device{}()) << 32;
    std::atomic<std::uint64_t> id_counter_{0};
};

}  // namespace forge::serve
