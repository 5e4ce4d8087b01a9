// The OpenAI API layer without sockets: request validation names the offending field for every kind
// of bad input, good requests map onto generation parameters, and the routes answer in OpenAI's shapes
// with usage counts that add up and forge's timings.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "forge/json/json.hpp"
#include "forge/model/batched_sequences.hpp"
#include "forge/model/open_model.hpp"
#include "forge/serve/openai.hpp"
#include "serve_fake_model.hpp"

namespace forge::serve {
namespace {

// Expects `body` to be refused with 400 naming `param` (empty: none) and saying `fragment`.
template <class Parse>
void expect_refused(Parse parse, const std::string& body, const std::string& param, const std::string& fragment) {
    try {
        parse(body);
        ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 400) << body;
        EXPECT_EQ(e.param, param) << body << " -> " << e.message;
        EXPECT_NE(e.message.find(fragment), std::string::npos) << body << " -> " << e.message;
        EXPECT_EQ(e.type, "invalid_request_error");
    }
}

void expect_chat_refused(const std::string& fields, const std::string& param, const std::string& fragment) {
    expect_refused(parse_chat_request, R"({"messages":[{"role":"user","content":"hi"}])" + fields + "}", param, fragment);
}

TEST(OpenAIRequest, MalformedBodiesAreRefused) {
    expect_refused(parse_chat_request, "{", "", "not valid JSON");
    expect_refused(parse_chat_request, "[1]", "", "must be a JSON object, got array");
    expect_refused(parse_chat_request, std::string(200, '['), "", "nesting");
    expect_refused(parse_chat_request, "{\"messages\":\"\xff\"}", "", "UTF-8");
}

TEST(OpenAIRequest, MessagesAreCheckedOneByOne) {
    expect_refused(parse_chat_request, "{}", "messages", "is required");
    expect_refused(parse_chat_request, R"({"messages":null})", "messages", "is required");
    expect_refused(parse_chat_request, R"({"messages":"hi"})", "messages", "must be an array, got string");
    expect_refused(parse_chat_request, R"({"messages":[]})", "messages", "must not be empty");
    expect_refused(parse_chat_request, R"({"messages":[1]})", "messages[0]", "must be an object, got number");
    expect_refused(parse_chat_request, R"({"messages":[{"content":"x"}]})", "messages[0].role", "is required");
    expect_refused(parse_chat_request, R"({"messages":[{"role":5,"content":"x"}]})", "messages[0].role", "must be a string");
    expect_refused(parse_chat_request, R"({"messages":[{"role":"user","content":"a"},{"role":"function","content":"x"}]})", "messages[1].role",
                   "'function'");
    expect_refused(parse_chat_request, R"({"messages":[{"role":"user"}]})", "messages[0].content", "is required");
    expect_refused(parse_chat_request, R"({"messages":[{"role":"user","content":5}]})", "messages[0].content", "got number");
    expect_refused(parse_chat_request, R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})",
                   "messages[0].content", "text only");
}

TEST(OpenAIRequest, SamplingFieldsAreTypeAndRangeChecked) {
    expect_chat_refused(R"(,"temperature":"hot")", "temperature", "must be a number, got string");
    expect_chat_refused(R"(,"temperature":2.5)", "temperature", "at most 2");
    expect_chat_refused(R"(,"top_p":0)", "top_p", "greater than 0");
    expect_chat_refused(R"(,"top_k":1.5)", "top_k", "must be an integer, got a fraction");
    expect_chat_refused(R"(,"top_k":-1)", "top_k", "between 0");
    expect_chat_refused(R"(,"min_p":1)", "min_p", "at most");
    expect_chat_refused(R"(,"max_tokens":-1)", "max_tokens", "between 0");
    expect_chat_refused(R"(,"max_tokens":"10")", "max_tokens", "must be an integer, got string");
    expect_chat_refused(R"(,"max_completion_tokens":1e300)", "max_completion_tokens", "between");
    expect_chat_refused(R"(,"seed":0.5)", "seed", "integer");
    expect_chat_refused(R"(,"n":2)", "n", "must be 1");
    expect_chat_refused(R"(,"stop":5)", "stop", "string or an array");
    expect_chat_refused(R"(,"stop":["a",1])", "stop", "found number");
    expect_chat_refused(R"(,"stop":[""])", "stop", "empty");
    expect_chat_refused(R"(,"stop":["a","b","c","d","e"])", "stop", "at most 4");
    expect_chat_refused(R"(,"stream":"yes")", "stream", "must be a boolean");
    expect_chat_refused(R"(,"stream_options":1)", "stream_options", "must be an object");
    expect_chat_refused(R"(,"stream_options":{"include_usage":1})", "include_usage", "must be a boolean");
    expect_chat_refused(R"(,"logprobs":1)", "logprobs", "must be a boolean");
    expect_chat_refused(R"(,"logprobs":true,"top_logprobs":21)", "top_logprobs", "between 0 and 20");
    expect_chat_refused(R"(,"top_logprobs":2)", "top_logprobs", "needs \"logprobs\": true");
    expect_refused(parse_completion_request, R"({"prompt":"a","logprobs":6})", "logprobs", "between 0 and 5");
    // What forge cannot do is refused, not dropped.
    expect_chat_refused(R"(,"logit_bias":{"50256":-100})", "logit_bias", "not supported");
    expect_refused(parse_completion_request, R"({"prompt":"a","echo":true})", "echo", "not supported");
    expect_refused(parse_completion_request, R"({"prompt":"a","best_of":3})", "best_of", "must be 1");
    expect_refused(parse_completion_request, R"({"prompt":"a","suffix":"end"})", "suffix", "not supported");
    EXPECT_NO_THROW(parse_completion_request(R"({"prompt":"a","echo":false,"best_of":1,"suffix":"","logit_bias":{}})"));
    expect_refused(parse_completion_request, R"({"prompt":"a","logprobs":true})", "logprobs", "must be an integer");
}

TEST(OpenAIRequest, SamplingNumbersAreCheckedAsTheFloatsTheSamplerUses) {
    // Positive as doubles, zero as floats: refused as 400s naming the field, never a 500 from the sampler.
    expect_chat_refused(R"(,"top_p":1e-50)", "top_p", "as a 32-bit float (1e-50 rounds to 0)");
    expect_chat_refused(R"(,"repeat_penalty":1e-50)", "repeat_penalty", "at least 0.001");
    expect_chat_refused(R"(,"repeat_penalty":1e-30)", "repeat_penalty", "at least 0.001");
    // What rounds to a value the sampler takes is taken: a temperature of 1e-50 is 0, greedy.
    EXPECT_EQ(parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"temperature":1e-50})").options.sampling.temperature, 0.0f);
    EXPECT_EQ(parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"min_p":1e-50})").options.sampling.min_p, 0.0f);
    EXPECT_FLOAT_EQ(parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"min_p":0.999})").options.sampling.min_p, 0.999f);
    EXPECT_NO_THROW(Sampler::check(parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"top_p":1e-40,"repeat_penalty":0.001})")
                                       .options.sampling));
}

TEST(OpenAIRequest, AGoodChatRequestMapsOntoGeneration) {
    const ChatRequest r = parse_chat_request(R"({
        "model": "anything", "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "you."}]},
            {"role": "assistant", "content": null}],
        "max_tokens": 9, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 20, "seed": 42,
        "stop": "\n", "stream": true, "stream_options": {"include_usage": true}, "frequency_penalty": 0, "user": "u1",
        "presence_penalty": null})");
    ASSERT_EQ(r.messages.size(), 3u);
    EXPECT_EQ(r.messages[0].role, "system");
    EXPECT_EQ(r.messages[1].content, "Hello, you.");
    EXPECT_EQ(r.messages[2].content, "");
    EXPECT_EQ(r.options.max_tokens, 7) << "the newer field wins";
    EXPECT_FLOAT_EQ(r.options.sampling.temperature, 0.5f);
    EXPECT_FLOAT_EQ(r.options.sampling.top_p, 0.9f);
    EXPECT_EQ(r.options.sampling.top_k, 20);
    EXPECT_EQ(r.options.sampling.seed, 42u);
    EXPECT_EQ(r.options.stop, std::vector<std::string>{"\n"});
    EXPECT_TRUE(r.options.stream);
    EXPECT_TRUE(r.options.include_usage);

    const ChatRequest d = parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],"temperature":null})");
    EXPECT_FALSE(d.options.max_tokens.has_value());
    EXPECT_FLOAT_EQ(d.options.sampling.temperature, 1.0f) << "OpenAI's default";
    EXPECT_EQ(d.options.sampling.top_k, 0);
    EXPECT_FALSE(d.options.stream);
}

TEST(OpenAIRequest, CompletionPromptIsOneString) {
    expect_refused(parse_completion_request, "{}", "prompt", "is required");
    expect_refused(parse_completion_request, R"({"prompt":5})", "prompt", "must be a string");
    expect_refused(parse_completion_request, R"({"prompt":["a","b"]})", "prompt", "must be a string");
    EXPECT_EQ(parse_completion_request(R"({"prompt":["Once"]})").prompt, "Once");
}

// Collects what the API writes.
class Recorder final : public Responder {
public:
    bool send(std::string_view bytes) override {
        out += bytes;
        return true;
    }
    bool hung_up() override { return false; }
    std::string out;
};

struct Reply {
    int status;
    std::string head, body;
};

Reply call(Api& api, const std::string& method, const std::string& target, const std::string& body = "", http::Headers headers = {}) {
    http::Request req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.headers = std::move(headers);
    Recorder r;
    EXPECT_TRUE(api.handle(req, r));
    const auto end = r.out.find("\r\n\r\n");
    return {std::stoi(r.out.substr(9, 3)), r.out.substr(0, end), r.out.substr(end + 4)};
}

// The data lines of a chunked SSE body.
std::vector<std::string> events(const std::string& chunked) {
    std::string body;
    for (std::size_t at = 0;;) {
        const std::size_t eol = chunked.find("\r\n", at);
        const std::size_t size = std::stoul(chunked.substr(at, eol - at), nullptr, 16);
        if (size == 0) break;
        body += chunked.substr(eol + 2, size);
        at = eol + 2 + size + 2;
    }
    std::vector<std::string> out;
    for (std::size_t at = 0; at < body.size();) {
        const std::size_t end = body.find("\n\n", at);
        out.push_back(body.substr(at + 6, end - at - 6));
        at = end + 2;
    }
    return out;
}

TEST(OpenAIRoutes, ModelsHealthAndUnknownRoutes) {
    test::FakeBackend b(2, "Once upon a time");
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const Reply models = call(api, "GET", "/v1/models");
    EXPECT_EQ(models.status, 200);
    const json::Value m = json::parse(models.body);
    EXPECT_EQ(m.at("object").as_string(), "list");
    EXPECT_EQ(m.at("data").as_array()[0].at("id").as_string(), "stories");
    EXPECT_EQ(m.at("data").as_array()[0].at("object").as_string(), "model");
    const json::Value h = json::parse(call(api, "GET", "/health?verbose=1").body);
    EXPECT_EQ(h.at("status").as_string(), "ok");
    EXPECT_EQ(h.at("slots").as_number(), 2);
    const Reply missing = call(api, "POST", "/v2/chat");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(json::parse(missing.body).at("error").at("code").as_string(), "not_found");
    const Reply wrong = call(api, "DELETE", "/v1/models");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_NE(wrong.head.find("\r\nAllow: GET"), std::string::npos);
}

TEST(OpenAIRoutes, CompletionHasUsageThatAddsUpAndTimings) {
    test::FakeBackend b(1, "Once upon a time");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const Reply r = call(api, "POST", "/v1/completions", R"({"prompt":"The dog","max_tokens":5,"temperature":0})");
    ASSERT_EQ(r.status, 200) << r.body;
    const json::Value v = json::parse(r.body);
    EXPECT_EQ(v.at("object").as_string(), "text_completion");
    EXPECT_EQ(v.at("id").as_string().rfind("cmpl-", 0), 0u);
    const json::Value& choice = v.at("choices").as_array().at(0);
    EXPECT_FALSE(choice.at("text").as_string().empty());
    EXPECT_EQ(choice.at("finish_reason").as_string(), "length");
    const json::Value& u = v.at("usage");
    EXPECT_EQ(u.at("prompt_tokens").as_number(), double(b.tok.encode("The dog", true).size()));
    EXPECT_EQ(u.at("completion_tokens").as_number(), 5);
    EXPECT_EQ(u.at("total_tokens").as_number(), u.at("prompt_tokens").as_number() + 5);
    for (const char* t : {"queue_ms", "prefill_ms", "prefill_tokens_per_second", "decode_ms", "decode_tokens_per_second"})
        EXPECT_TRUE(v.at("timings").at(t).is_number()) << t;
}

// Two slots of the real bundled model as forge serve makes them (sequences of one model in shared
// passes), one generating at a time, the other a prompt cache: the second turn of a conversation goes to
// the slot holding the first, feeds only what is new, and answers exactly as a fresh model computing
// everything would.
TEST(OpenAIRoutes, ASecondTurnReusesTheFirstTurnsCacheAndAnswersAsAFreshSlotWould) {
    const auto file = gguf::File::open(test::model_path("stories260K.gguf"));
    const Tokenizer tok = Tokenizer::from_gguf(file);
    const auto server = [&](int slots) { return std::make_unique<Scheduler>(batched_sequences(open_model(file, {.threads = 1}), slots), 1); };
    const auto chat = [&](Api& api, const std::string& messages) {
        const Reply r = call(api, "POST", "/v1/chat/completions", R"({"temperature":0,"max_tokens":12,"messages":)" + messages + "}");
        EXPECT_EQ(r.status, 200) << r.body;
        return json::parse(r.body);
    };
    const auto cached = [](const json::Value& v) { return v.at("usage").at("prompt_tokens_details").at("cached_tokens").as_number(); };

    auto slots = server(2);
    Api api(tok, *slots, chat::Template(chat::Format::chatml), "stories");
    const std::string first_turn = R"([{"role":"user","content":"Tell me about a dog."}])";
    const json::Value first = chat(api, first_turn);
    EXPECT_EQ(cached(first), 0);
    // Another conversation in between takes the other slot and leaves this one's cache alone.
    EXPECT_EQ(cached(chat(api, R"([{"role":"user","content":"A cat sat."}])")), 0);
    const std::string reply = first.at("choices").as_array().at(0).at("message").at("content").as_string();
    json::Value reply_json(reply);
    const std::string second_turn = R"([{"role":"user","content":"Tell me about a dog."},{"role":"assistant","content":)" +
                                    json::dump(reply_json) + R"(},{"role":"user","content":"And then?"}])";
    const json::Value second = chat(api, second_turn);
    EXPECT_GE(cached(second), first.at("usage").at("prompt_tokens").as_number());
    EXPECT_LT(cached(second), second.at("usage").at("prompt_tokens").as_number());
    EXPECT_EQ(second.at("timings").at("prefill_tokens").as_number(),
              second.at("usage").at("prompt_tokens").as_number() - cached(second));

    auto fresh_slots = server(1);
    Api fresh(tok, *fresh_slots, chat::Template(chat::Format::chatml), "stories");
    const json::Value again = chat(fresh, second_turn);
    EXPECT_EQ(cached(again), 0);
    EXPECT_EQ(again.at("choices").as_array().at(0).at("message").at("content").as_string(),
              second.at("choices").as_array().at(0).at("message").at("content").as_string());
}

// At most `running` leases at once: the next request waits, in arrival order, and gets the least recently
// used free slot when its prompt shares too little with any (conversations that paused keep theirs).
TEST(Scheduler, SlotsBeyondTheRunningOnesKeepConversationsUntilLeastRecentlyUsed) {
    const auto file = gguf::File::open(test::model_path("stories260K.gguf"));
    Scheduler slots(batched_sequences(open_model(file, {.threads = 1}), 3), 1);
    const std::vector<std::int32_t> a = {1, 10, 11, 12}, b = {1, 20, 21, 22}, c = {1, 30, 31, 32};
    const auto never = [] { return false; };
    std::optional<Scheduler::Lease> first = slots.acquire(a, never);
    ASSERT_TRUE(first);
    AnyModel* slot_a = &first->model();
    slot_a->prefill(a);

    std::atomic<bool> got_one{false};
    AnyModel* slot_b = nullptr;
    std::thread waiter([&] {
        auto second = slots.acquire(b, never);
        got_one = true;
        slot_b = &second->model();
        slot_b->prefill(b);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_FALSE(got_one) << "a second request ran beside the first with one running slot";
    EXPECT_EQ(slots.stats().queued, 1);
    first.reset();
    waiter.join();
    EXPECT_NE(slot_b, slot_a) << "b shares nothing with a: it takes the least recently used slot, not a's";

    // a's conversation comes back: its slot still holds it.
    std::vector<std::int32_t> a_more = a;
    a_more.push_back(13);
    auto again = slots.acquire(a_more, never);
    EXPECT_EQ(&again->model(), slot_a);
    EXPECT_EQ(again->model().keep_prefix_of(a_more), int(a.size()));
    again.reset();
    // A third conversation takes the slot never used, and a fourth evicts the least recently used: b's.
    const std::vector<std::int32_t> d = {1, 40, 41, 42};
    for (const auto* p : {&c, &d}) {
        auto lease = slots.acquire(*p, never);
        const int kept = lease->model().keep_prefix_of(*p);  // as the server does: the slot's old conversation goes
        lease->model().prefill(std::span(*p).subspan(std::size_t(kept)));
    }
    EXPECT_EQ(slot_b->common_prefix(d), d.size());
    EXPECT_EQ(slot_a->common_prefix(a), a.size());
    const auto st = slots.stats();
    EXPECT_EQ(st.slots, 3);
    EXPECT_EQ(st.running, 1);
    EXPECT_EQ(st.busy, 0);
    EXPECT_EQ(st.cached_tokens, a.size() + c.size() + d.size());
}

TEST(OpenAIRoutes, StopStringsEndTheReplyAndAreNotIncluded) {
    test::FakeBackend b(1, "Once upon a time there");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const Reply r = call(api, "POST", "/v1/chat/completions",
                         R"({"messages":[{"role":"user","content":"hi"}],"temperature":0,"stop":["zzz","time"]})");
    ASSERT_EQ(r.status, 200) << r.body;
    const json::Value v = json::parse(r.body);
    const json::Value& choice = v.at("choices").as_array().at(0);
    EXPECT_EQ(choice.at("message").at("content").as_string(), " Once upon a ");
    EXPECT_EQ(choice.at("finish_reason").as_string(), "stop");
}

TEST(OpenAIRoutes, StreamedCompletionEndsWithUsageThenDone) {
    test::FakeBackend b(1, "Once upon a time");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const std::size_t n = b.script("Once upon a time").size();
    const Reply r = call(api, "POST", "/v1/completions",
                         R"({"prompt":"The","temperature":0,"stream":true,"stream_options":{"include_usage":true},"max_tokens":)" +
                             std::to_string(n) + "}");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.head.find("Content-Type: text/event-stream"), std::string::npos);
    const auto ev = events(r.body);
    ASSERT_GE(ev.size(), 4u);
    EXPECT_EQ(ev.back(), "[DONE]");
    const json::Value usage = json::parse(ev[ev.size() - 2]);
    EXPECT_TRUE(usage.at("choices").as_array().empty());
    EXPECT_EQ(usage.at("usage").at("completion_tokens").as_number(), double(n));
    const json::Value last = json::parse(ev[ev.size() - 3]);
    EXPECT_EQ(last.at("choices").as_array()[0].at("finish_reason").as_string(), "length");
    std::string text;
    for (std::size_t i = 0; i + 3 < ev.size(); ++i) {
        const json::Value c = json::parse(ev[i]);
        EXPECT_EQ(c.at("object").as_string(), "text_completion");
        EXPECT_TRUE(c.at("choices").as_array()[0].at("finish_reason").is_null());
        text += c.at("choices").as_array()[0].at("text").as_string();
    }
    EXPECT_EQ(text, " Once upon a time");
}

// The fake model puts a logit of 10 on its scripted token and 0 on the other 511: each token's
// log-probability is 10 - log(e^10 + 511), and the alternatives after it tie at -log(e^10 + 511), lowest id first.
const double kScriptedLogprob = 10.0 - std::log(std::exp(10.0) + 511.0), kOtherLogprob = -std::log(std::exp(10.0) + 511.0);

TEST(OpenAIRoutes, ChatLogprobsComeBackPerTokenWithTheirAlternatives) {
    test::FakeBackend b(1, "Once upon a time");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const auto script = b.script("Once upon a time");
    const Reply r = call(api, "POST", "/v1/chat/completions",
                         R"({"messages":[{"role":"user","content":"hi"}],"temperature":0,"logprobs":true,"top_logprobs":3,"max_tokens":)" +
                             std::to_string(script.size()) + "}");
    ASSERT_EQ(r.status, 200) << r.body;
    const json::Value body = json::parse(r.body);
    const json::Value& choice = body.at("choices").as_array().at(0);
    const json::Array& content = choice.at("logprobs").at("content").as_array();
    ASSERT_EQ(content.size(), script.size());
    std::string text;
    for (std::size_t i = 0; i < content.size(); ++i) {
        const json::Value& e = content[i];
        text += e.at("token").as_string();
        EXPECT_NEAR(e.at("logprob").as_number(), kScriptedLogprob, 1e-5);
        std::string bytes;
        for (const auto& c : e.at("bytes").as_array()) bytes += char(int(c.as_number()));
        EXPECT_EQ(bytes, e.at("token").as_string());
        const json::Array& top = e.at("top_logprobs").as_array();
        ASSERT_EQ(top.size(), 3u);
        EXPECT_EQ(top[0].at("token").as_string(), e.at("token").as_string());
        EXPECT_NEAR(top[1].at("logprob").as_number(), kOtherLogprob, 1e-5);
        EXPECT_EQ(top[1].at("token").as_string(), b.tok.decode(script[i] == 0 ? 1 : 0, true));
    }
    EXPECT_EQ(text, " Once upon a time");
    EXPECT_EQ(choice.at("message").at("content").as_string(), text);
}

TEST(OpenAIRoutes, LogprobsStreamWithTheTextTheyMadeAndInTheLegacyShape) {
    test::FakeBackend b(1, "Once upon a time");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const auto script = b.script("Once upon a time");
    const std::string n = std::to_string(script.size());
    // Streamed chat: every token's entry arrives, in the chunks whose text it made.
    const Reply streamed = call(api, "POST", "/v1/chat/completions",
                                R"({"messages":[{"role":"user","content":"hi"}],"temperature":0,"logprobs":true,"stream":true,"max_tokens":)" + n + "}");
    ASSERT_EQ(streamed.status, 200);
    std::size_t entries = 0;
    for (const auto& ev : events(streamed.body)) {
        if (ev == "[DONE]") continue;
        const json::Value chunk = json::parse(ev);
        const json::Value& c = chunk.at("choices").as_array().at(0);
        if (c.at("logprobs").is_null()) continue;  // the role chunk
        std::string tokens;
        for (const auto& e : c.at("logprobs").at("content").as_array()) {
            tokens += e.at("token").as_string();
            EXPECT_TRUE(e.at("top_logprobs").as_array().empty());
            ++entries;
        }
        if (c.at("delta").find("content")) {
            EXPECT_EQ(tokens, c.at("delta").at("content").as_string());
        }
    }
    EXPECT_EQ(entries, script.size());
    // The legacy completions route: tokens, their logprobs, alternatives as {token: logprob}, offsets.
    const Reply legacy = call(api, "POST", "/v1/completions", R"({"prompt":"The","temperature":0,"logprobs":2,"max_tokens":)" + n + "}");
    ASSERT_EQ(legacy.status, 200) << legacy.body;
    const json::Value legacy_body = json::parse(legacy.body);
    const json::Value& choice = legacy_body.at("choices").as_array().at(0);
    const json::Value& lp = choice.at("logprobs");
    ASSERT_EQ(lp.at("tokens").as_array().size(), script.size());
    std::string text;
    for (std::size_t i = 0; i < script.size(); ++i) {
        EXPECT_EQ(lp.at("text_offset").as_array()[i].as_number(), double(text.size()));
        text += lp.at("tokens").as_array()[i].as_string();
        EXPECT_NEAR(lp.at("token_logprobs").as_array()[i].as_number(), kScriptedLogprob, 1e-5);
        EXPECT_EQ(lp.at("top_logprobs").as_array()[i].as_object().size(), 2u);
    }
    EXPECT_EQ(text, choice.at("text").as_string());
}

TEST(OpenAIRoutes, AnApiKeyGuardsEveryRouteButHealth) {
    test::FakeBackend b(1, "Once");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories", {.api_key = "s3cret-key"});
    EXPECT_EQ(call(api, "GET", "/health").status, 200);
    for (const http::Headers& wrong : {http::Headers{}, http::Headers{{"authorization", "Bearer s3cret-kex"}},
                                       http::Headers{{"authorization", "Bearer s3cret-key2"}}, http::Headers{{"authorization", "s3cret-key"}},
                                       http::Headers{{"authorization", "Basic s3cret-key"}}}) {
        const Reply r = call(api, "GET", "/v1/models", "", wrong);
        EXPECT_EQ(r.status, 401);
        EXPECT_NE(r.head.find("WWW-Authenticate: Bearer"), std::string::npos);
        EXPECT_EQ(json::parse(r.body).at("error").at("code").as_string(), "invalid_api_key");
    }
    EXPECT_EQ(call(api, "GET", "/v1/models", "", {{"authorization", "Bearer s3cret-key"}}).status, 200);
    EXPECT_EQ(call(api, "POST", "/tokenize", R"({"content":"hi"})").status, 401);
    EXPECT_TRUE(detail::equal_in_constant_time("abc", "abc"));
    EXPECT_FALSE(detail::equal_in_constant_time("abc", "abd"));
    EXPECT_FALSE(detail::equal_in_constant_time("abc", "ab"));
    EXPECT_FALSE(detail::equal_in_constant_time("", "a"));
}

TEST(OpenAIRoutes, TokenizeAndDetokenizeRoundTrip) {
    test::FakeBackend b(1, "Once");
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const Reply t = call(api, "POST", "/tokenize", R"({"content":"Once upon a time","add_special":true})");
    ASSERT_EQ(t.status, 200) << t.body;
    json::Array ids;
    std::vector<std::int32_t> want = b.tok.encode("Once upon a time", true);
    const json::Value tokenized = json::parse(t.body);
    for (const auto& id : tokenized.at("tokens").as_array()) ids.push_back(id);
    ASSERT_EQ(ids.size(), want.size());
    for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i].as_number(), want[i]);
    const Reply d = call(api, "POST", "/detokenize", json::dump(json::Object{{"tokens", ids}}));
    ASSERT_EQ(d.status, 200) << d.body;
    EXPECT_EQ(json::parse(d.body).at("content").as_string(), "Once upon a time");
    // Without add_special: the same ids less the BOS the vocabulary adds.
    EXPECT_EQ(json::parse(call(api, "POST", "/tokenize", R"({"content":"Once upon a time"})").body).at("tokens").as_array().size(), want.size() - 1);
    for (const char* bad : {R"({"tokens":[1,512]})", R"({"tokens":[-1]})", R"({"tokens":[1.5]})", R"({"tokens":"1"})", R"({})"}) {
        const Reply r = call(api, "POST", "/detokenize", bad);
        EXPECT_EQ(r.status, 400) << bad;
        EXPECT_EQ(json::parse(r.body).at("error").at("param").as_string(), "tokens") << bad;
    }
    EXPECT_EQ(call(api, "POST", "/tokenize", R"({"content":5})").status, 400);
    EXPECT_EQ(call(api, "GET", "/tokenize").status, 405);
}

// The value of header `name` in a reply's head, or "" when absent.
std::string header_of(const Reply& r, const std::string& name) {
    const std::string key = "\r\n" + name + ": ";
    const auto at = r.head.find(key);
    if (at == std::string::npos) return {};
    const auto begin = at + key.size();
    return r.head.substr(begin, r.head.find("\r\n", begin) - begin);
}

TEST(OpenAICors, WithoutOriginsRepliesCarryNoCorsHeaders) {
    test::FakeBackend b(1, "Once");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const http::Headers from_page = {{"origin", "https://app.example"}};
    EXPECT_EQ(call(api, "GET", "/v1/models", "", from_page).head.find("Access-Control"), std::string::npos);
    const Reply preflight = call(api, "OPTIONS", "/v1/chat/completions", "", {{"origin", "https://app.example"}, {"access-control-request-method", "POST"}});
    EXPECT_EQ(preflight.status, 204);
    EXPECT_EQ(header_of(preflight, "Allow"), "POST, OPTIONS");
    EXPECT_EQ(preflight.head.find("Access-Control"), std::string::npos) << "a browser must be refused";
}

TEST(OpenAICors, AllowedOriginsGetPreflightAndEveryReplyMarked) {
    test::FakeBackend b(1, "Once upon a time");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories",
            {.api_key = "k", .cors_origins = {"https://app.example", "http://localhost:3000"}});
    const http::Headers allowed = {{"origin", "http://localhost:3000"}, {"authorization", "Bearer k"}};

    // Preflight needs no key; it names the method, the headers a client sends, and how long to cache it.
    const Reply preflight = call(api, "OPTIONS", "/v1/chat/completions", "", {{"origin", "https://app.example"}});
    EXPECT_EQ(preflight.status, 204);
    EXPECT_EQ(preflight.head.find("Content-Length"), std::string::npos);
    EXPECT_EQ(header_of(preflight, "Access-Control-Allow-Origin"), "https://app.example");
    EXPECT_EQ(header_of(preflight, "Access-Control-Allow-Methods"), "POST, OPTIONS");
    EXPECT_EQ(header_of(preflight, "Access-Control-Allow-Headers"), "Authorization, Content-Type");
    EXPECT_EQ(header_of(preflight, "Access-Control-Max-Age"), "86400");
    EXPECT_EQ(header_of(preflight, "Vary"), "Origin");
    // Another origin's preflight is answered without permission.
    const Reply other = call(api, "OPTIONS", "/v1/models", "", {{"origin", "https://evil.example"}});
    EXPECT_EQ(other.status, 204);
    EXPECT_EQ(header_of(other, "Access-Control-Allow-Origin"), "");
    EXPECT_EQ(header_of(other, "Access-Control-Allow-Methods"), "");
    EXPECT_EQ(call(api, "OPTIONS", "/v2/nothing", "", {{"origin", "https://app.example"}}).status, 404);

    // Replies of every kind carry the origin: JSON, errors (401, 400, 405), streams.
    EXPECT_EQ(header_of(call(api, "GET", "/v1/models", "", allowed), "Access-Control-Allow-Origin"), "http://localhost:3000");
    const Reply unauthorized = call(api, "GET", "/v1/models", "", {{"origin", "https://app.example"}});
    EXPECT_EQ(unauthorized.status, 401);
    EXPECT_EQ(header_of(unauthorized, "Access-Control-Allow-Origin"), "https://app.example");
    EXPECT_EQ(header_of(unauthorized, "WWW-Authenticate"), "Bearer");
    const Reply bad = call(api, "POST", "/v1/chat/completions", R"({"messages":[]})", allowed);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(header_of(bad, "Access-Control-Allow-Origin"), "http://localhost:3000");
    EXPECT_EQ(header_of(call(api, "DELETE", "/v1/models", "", allowed), "Access-Control-Allow-Origin"), "http://localhost:3000");
    const Reply stream = call(api, "POST", "/v1/chat/completions",
                              R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":true})", allowed);
    EXPECT_EQ(stream.status, 200);
    EXPECT_EQ(header_of(stream, "Access-Control-Allow-Origin"), "http://localhost:3000");
    EXPECT_EQ(header_of(call(api, "GET", "/v1/models", "", {{"origin", "https://evil.example"}, {"authorization", "Bearer k"}}),
                        "Access-Control-Allow-Origin"),
              "");

    Api any(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories", {.cors_origins = {"*"}});
    const Reply r = call(any, "GET", "/health", "", {{"origin", "https://whoever.example"}});
    EXPECT_EQ(header_of(r, "Access-Control-Allow-Origin"), "*");
    EXPECT_EQ(header_of(r, "Vary"), "") << "the answer does not depend on Origin";
}

TEST(OpenAICors, OriginsAreCheckedAsBrowsersSendThem) {
    for (const char* good : {"*", "https://app.example", "http://localhost:3000", "http://[::1]:8080", "chrome-extension://abcdef"})
        EXPECT_TRUE(is_cors_origin(good)) << good;
    for (const char* bad : {"", "app.example", "https://", "https://app.example/", "https://app.example/path", "://x", "https://a b",
                            "https://user@app.example", "**"})
        EXPECT_FALSE(is_cors_origin(bad)) << bad;
}

// The value of an unlabelled sample, or of one whose labels are `labels`, in a Prometheus exposition.
double sample_of(const std::string& text, const std::string& name_and_labels) {
    const auto at = text.find("\n" + name_and_labels + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name_and_labels.size() + 2));
}

TEST(OpenAIMetrics, CountersFollowTheWorkInPrometheusText) {
    test::FakeBackend b(2, "Once upon a time");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories", {.api_key = "k"});
    const http::Headers key = {{"authorization", "Bearer k"}};
    const std::string body = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"temperature":0})";
    const Reply first = call(api, "POST", "/v1/chat/completions", body, key);
    ASSERT_EQ(first.status, 200);
    const Reply second =
        call(api, "POST", "/v1/chat/completions", R"({"stream":true,"stream_options":{"include_usage":true},)" + body.substr(1), key);
    ASSERT_EQ(second.status, 200);
    EXPECT_EQ(call(api, "POST", "/v1/chat/completions", R"({"messages":[]})", key).status, 400);
    EXPECT_EQ(call(api, "GET", "/no/such/route/1", "", key).status, 404);
    EXPECT_EQ(call(api, "GET", "/no/such/route/2", "", key).status, 404);
    EXPECT_EQ(call(api, "GET", "/metrics").status, 401) << "behind the key like every route but /health";

    const Reply m = call(api, "GET", "/metrics", "", key);
    ASSERT_EQ(m.status, 200);
    EXPECT_EQ(header_of(m, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const std::string& t = m.body;
    const double prompt = json::parse(first.body).at("usage").at("prompt_tokens").as_number();
    EXPECT_EQ(sample_of(t, "forge_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"), 2);
    EXPECT_EQ(sample_of(t, "forge_requests_total{route=\"/v1/chat/completions\",status=\"400\"}"), 1);
    EXPECT_EQ(sample_of(t, "forge_requests_total{route=\"other\",status=\"404\"}"), 2) << "unknown paths share one series";
    EXPECT_EQ(sample_of(t, "forge_requests_total{route=\"/metrics\",status=\"401\"}"), 1);
    EXPECT_EQ(sample_of(t, "forge_prompt_tokens_total"), 2 * prompt);
    // The second request found the first one's prompt in its slot.
    const auto streamed = events(second.body);
    const double cached = json::parse(streamed[streamed.size() - 2]).at("usage").at("prompt_tokens_details").at("cached_tokens").as_number();
    EXPECT_GT(cached, 0);
    EXPECT_EQ(sample_of(t, "forge_prompt_cached_tokens_total"), cached);
    EXPECT_EQ(sample_of(t, "forge_generated_tokens_total"), 6);
    EXPECT_EQ(sample_of(t, "forge_requests_running"), 0);
    EXPECT_EQ(sample_of(t, "forge_requests_queued"), 0);
    EXPECT_EQ(sample_of(t, "forge_slots"), 2);
    EXPECT_GT(sample_of(t, "forge_slots_cached_tokens"), 0);
    for (const std::string h : {"forge_time_to_first_token_seconds", "forge_request_duration_seconds"}) {
        EXPECT_NE(t.find("# TYPE " + h + " histogram\n"), std::string::npos) << h;
        EXPECT_EQ(sample_of(t, h + "_count"), 2) << h;
        EXPECT_EQ(sample_of(t, h + "_bucket{le=\"+Inf\"}"), 2) << h;
        EXPECT_GE(sample_of(t, h + "_sum"), 0) << h;
        // Buckets are cumulative: never decreasing.
        double last = 0;
        for (std::size_t at = 0; (at = t.find(h + "_bucket{", at)) != std::string::npos; ++at) {
            const double v = std::stod(t.substr(t.find("} ", at) + 2));
            EXPECT_GE(v, last);
            last = v;
        }
    }
    // Every line is a comment or `name{labels} value`; every family has HELP and TYPE.
    for (std::size_t at = 0; at < t.size();) {
        const std::size_t eol = t.find('\n', at);
        ASSERT_NE(eol, std::string::npos) << "the exposition ends with a newline";
        const std::string line = t.substr(at, eol - at);
        at = eol + 1;
        if (line.rfind("# ", 0) == 0) {
            EXPECT_TRUE(line.rfind("# HELP forge_", 0) == 0 || line.rfind("# TYPE forge_", 0) == 0) << line;
            continue;
        }
        EXPECT_EQ(line.rfind("forge_", 0), 0u) << line;
        EXPECT_NO_THROW(std::stod(line.substr(line.rfind(' ') + 1))) << line;
    }
    for (const char* counter : {"forge_requests_total", "forge_prompt_tokens_total", "forge_prompt_cached_tokens_total", "forge_generated_tokens_total"})
        EXPECT_NE(t.find(std::string("# TYPE ") + counter + " counter\n"), std::string::npos) << counter;
}

TEST(OpenAIRoutes, EveryWholeReplyHasUsageAndNMustBeOne) {
    test::FakeBackend b(1, "Once");
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    for (const auto& [route, body] : {std::pair{"/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1,"n":1})"},
                                      std::pair{"/v1/completions", R"({"prompt":"hi","max_tokens":1,"n":1})"}}) {
        const Reply r = call(api, "POST", route, body);
        ASSERT_EQ(r.status, 200) << route;
        const json::Value v = json::parse(r.body);
        const json::Value& u = v.at("usage");
        EXPECT_EQ(u.at("completion_tokens").as_number(), 1) << route;
        EXPECT_EQ(u.at("total_tokens").as_number(), u.at("prompt_tokens").as_number() + 1) << route;
    }
    const Reply two = call(api, "POST", "/v1/completions", R"({"prompt":"hi","n":2})");
    EXPECT_EQ(two.status, 400);
    EXPECT_EQ(json::parse(two.body).at("error").at("param").as_string(), "n");
}

TEST(OpenAIRequest, ResponseFormatIsCheckedAndCompiled) {
    expect_chat_refused(R"(,"response_format":"json")", "response_format", "must be an object");
    expect_chat_refused(R"(,"response_format":{})", "response_format.type", "is required");
    expect_chat_refused(R"(,"response_format":{"type":"yaml"})", "response_format.type", "got 'yaml'");
    expect_chat_refused(R"(,"response_format":{"type":"json_schema"})", "response_format.json_schema", "is required");
    expect_chat_refused(R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x"}})", "response_format.json_schema.schema", "is required");
    expect_chat_refused(R"(,"response_format":{"type":"json_schema","json_schema":{"schema":[]}})", "response_format.json_schema.schema",
                        "must be an object");
    expect_chat_refused(R"(,"response_format":{"type":"json_schema","json_schema":{"strict":"yes","schema":{}}})",
                        "response_format.json_schema.strict", "must be a boolean");
    // What the schema compiler does not support is named, with where it is.
    expect_chat_refused(R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","properties":{"x":{"type":"object","patternProperties":{"^a":{}}}}}}})",
                        "response_format.json_schema.schema", "unsupported keyword 'patternProperties' at /properties/x");
    EXPECT_EQ(parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"text"}})").options.grammar, nullptr);
    // json_object: any JSON object, nothing else.
    const auto object = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})").options.grammar;
    ASSERT_NE(object, nullptr);
    const auto matches = [&](std::string_view text) {
        grammar::Matcher m(object);
        return m.feed(text) && m.complete();
    };
    EXPECT_TRUE(matches(R"( {"a": [1, {"b": null}]})"));
    EXPECT_FALSE(matches("[1]"));
    EXPECT_FALSE(matches("{\"a\": 1"));
}

// The real bundled model under a schema: whatever its 512-token vocabulary makes of it, the reply parses
// and validates, whole and streamed.
TEST(OpenAIRoutes, JsonSchemaRepliesParseAndValidateWithTheBundledModel) {
    const auto file = gguf::File::open(test::model_path("stories260K.gguf"));
    const Tokenizer tok = Tokenizer::from_gguf(file);
    std::vector<std::unique_ptr<AnyModel>> models;
    models.push_back(open_model(file, {.threads = 1}));
    Scheduler slots(std::move(models));
    Api api(tok, slots, chat::Template(chat::Format::chatml), "stories");
    const std::string format = R"({"type":"json_schema","json_schema":{"name":"pet","strict":true,"schema":{"type":"object",
        "properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0},"kind":{"enum":["cat","dog"]}},
        "required":["name","age","kind"],"additionalProperties":false}}})";
    for (const std::string extra : {R"("temperature":0)", R"("temperature":1,"seed":3)", R"("temperature":0,"stream":true)"}) {
        const Reply r = call(api, "POST", "/v1/chat/completions",
                             R"({"messages":[{"role":"user","content":"A pet, as JSON."}],"max_tokens":120,"response_format":)" + format + "," + extra + "}");
        ASSERT_EQ(r.status, 200) << r.body;
        std::string text;
        if (extra.find("stream") != std::string::npos) {
            for (const auto& ev : events(r.body)) {
                if (ev == "[DONE]") continue;
                const json::Value chunk = json::parse(ev);
                if (const json::Value* c = chunk.at("choices").as_array().at(0).at("delta").find("content")) text += c->as_string();
            }
        } else {
            const json::Value v = json::parse(r.body);
            EXPECT_EQ(v.at("choices").as_array().at(0).at("finish_reason").as_string(), "stop") << r.body;
            text = v.at("choices").as_array().at(0).at("message").at("content").as_string();
        }
        const json::Value pet = json::parse(text);
        EXPECT_EQ(pet.as_object().size(), 3u) << text;
        EXPECT_LE(pet.at("name").as_string().size(), 12u) << text;
        EXPECT_GE(pet.at("age").as_number(), 0) << text;
        EXPECT_EQ(pet.at("age").as_number(), std::floor(pet.at("age").as_number())) << text;
        EXPECT_TRUE(pet.at("kind").as_string() == "cat" || pet.at("kind").as_string() == "dog") << text;
    }
}

const std::string kWeatherTool =
    R"({"type":"function","function":{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":16}},"required":["city"]}}})";

TEST(OpenAIRequest, ToolsAndToolChoiceAreChecked) {
    expect_chat_refused(R"(,"tools":{})", "tools", "must be an array");
    expect_chat_refused(R"(,"tools":[1])", "tools[0]", "must be an object");
    expect_chat_refused(R"(,"tools":[{"type":"code_interpreter"}])", "tools[0].type", "must be 'function'");
    expect_chat_refused(R"(,"tools":[{"type":"function"}])", "tools[0].function", "is required");
    expect_chat_refused(R"(,"tools":[{"type":"function","function":{}}])", "tools[0].function.name", "is required");
    expect_chat_refused(R"(,"tools":[{"type":"function","function":{"name":"get weather"}}])", "tools[0].function.name", "letters, digits");
    expect_chat_refused(R"(,"tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}])", "tools[0].function.parameters", "must be a JSON schema object");
    expect_chat_refused(R"(,"tools":[{"type":"function","function":{"name":"f","description":5}}])", "tools[0].function.description", "must be a string");
    expect_chat_refused(",\"tools\":[" + kWeatherTool + "," + kWeatherTool + "]", "tools[1].function.name", "declared twice");
    expect_chat_refused(",\"tools\":[" + kWeatherTool + "],\"tool_choice\":\"always\"", "tool_choice", "got 'always'");
    expect_chat_refused(",\"tools\":[" + kWeatherTool + "],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "tool_choice",
                        "'f', which is not in 'tools'");
    expect_chat_refused(",\"tools\":[" + kWeatherTool + "],\"tool_choice\":{\"type\":\"function\"}", "tool_choice", "when an object");
    expect_chat_refused(",\"tool_choice\":\"required\"", "tool_choice", "needs 'tools'");
    expect_chat_refused(",\"tools\":[" + kWeatherTool + "],\"parallel_tool_calls\":1", "parallel_tool_calls", "must be a boolean");
    expect_chat_refused(",\"tools\":[" + kWeatherTool + R"(],"tool_choice":"required","response_format":{"type":"json_object"})", "response_format",
                        "cannot be combined");

    const ChatRequest r = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"tools":[)" + kWeatherTool +
                                             R"(],"tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false})");
    EXPECT_EQ(r.tools.size(), 1u);
    EXPECT_EQ(r.tool_choice, ToolChoice::named);
    EXPECT_EQ(r.tool_name, "get_weather");
    EXPECT_FALSE(r.parallel_tool_calls);
    EXPECT_TRUE(r.forces_call());
    const ChatRequest none = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"tools":[)" + kWeatherTool + R"(],"tool_choice":"none"})");
    EXPECT_FALSE(none.uses_tools());
    EXPECT_TRUE(parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"tools":[)" + kWeatherTool + "]}").uses_tools());
}

TEST(OpenAIRequest, ToolMessagesAndAssistantCallsBecomeChatMessages) {
    const ChatRequest r = parse_chat_request(R"({"messages":[
        {"role":"user","content":"Weather in Paris?","name":"ann"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"18 C, sunny"}]})");
    ASSERT_EQ(r.messages.size(), 3u);
    EXPECT_EQ(r.messages[0].name, "ann");
    ASSERT_EQ(r.messages[1].tool_calls.size(), 1u);
    EXPECT_EQ(r.messages[1].tool_calls[0].id, "call_1");
    EXPECT_EQ(r.messages[1].tool_calls[0].name, "get_weather");
    EXPECT_EQ(json::dump(r.messages[1].tool_calls[0].arguments), R"({"city":"Paris"})") << "arguments arrive as a string and are parsed";
    EXPECT_EQ(r.messages[1].content, "");
    EXPECT_EQ(r.messages[2].role, "tool");
    EXPECT_EQ(r.messages[2].tool_call_id, "call_1");
    EXPECT_EQ(r.messages[2].content, "18 C, sunny");

    const auto refused = [](const std::string& message, const std::string& param, const std::string& fragment) {
        expect_refused(parse_chat_request, R"({"messages":[{"role":"user","content":"a"},)" + message + "]}", param, fragment);
    };
    refused(R"({"role":"tool","content":"x"})", "messages[1].tool_call_id", "is required");
    refused(R"({"role":"tool","tool_call_id":"c"})", "messages[1].content", "is required");
    refused(R"({"role":"user","content":"x","name":1})", "messages[1].name", "must be a string");
    refused(R"({"role":"user","content":"x","tool_calls":[]})", "messages[1].tool_calls", "belongs to assistant messages");
    refused(R"({"role":"assistant","tool_calls":{}})", "messages[1].tool_calls", "must be an array");
    refused(R"({"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]})", "messages[1].tool_calls[0].id",
            "is required");
    refused(R"({"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":{}}}]})",
            "messages[1].tool_calls[0].function.arguments", "must be a string");
    refused(R"({"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{city: Paris}"}}]})",
            "messages[1].tool_calls[0].function.arguments", "must be a JSON object in a string");
    refused(R"({"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1]"}}]})",
            "messages[1].tool_calls[0].function.arguments", "got array");
    refused(R"({"role":"assistant","tool_calls":[{"id":"c","type":"x","function":{"name":"f","arguments":"{}"}}]})",
            "messages[1].tool_calls[0].type", "must be 'function'");
}

const std::string kScriptedCall = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";

std::string weather_request(const std::string& extra) {
    return R"({"messages":[{"role":"user","content":"Weather in Paris?"}],"temperature":0,"tools":[)" + kWeatherTool + "]" + extra + "}";
}

TEST(OpenAIRoutes, AReplyThatCallsAToolComesBackAsToolCalls) {
    test::FakeBackend b(1, kScriptedCall);
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const std::string n = std::to_string(b.script(kScriptedCall).size());
    const Reply r = call(api, "POST", "/v1/chat/completions", weather_request(",\"max_tokens\":" + n));
    ASSERT_EQ(r.status, 200) << r.body;
    const json::Value v = json::parse(r.body);
    const json::Value& choice = v.at("choices").as_array().at(0);
    EXPECT_EQ(choice.at("finish_reason").as_string(), "tool_calls");
    EXPECT_TRUE(choice.at("message").at("content").is_null()) << "only calls: content is null";
    const json::Array& calls = choice.at("message").at("tool_calls").as_array();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].at("id").as_string().rfind("call_", 0), 0u);
    EXPECT_EQ(calls[0].at("type").as_string(), "function");
    EXPECT_EQ(calls[0].at("function").at("name").as_string(), "get_weather");
    EXPECT_EQ(calls[0].at("function").at("arguments").as_string(), R"({"city":"Paris"})") << "arguments as a string of JSON";
    EXPECT_EQ(v.at("usage").at("completion_tokens").as_number(), b.script(kScriptedCall).size());

    // tool_choice none: no tools, no reading for calls.
    const Reply plain = call(api, "POST", "/v1/chat/completions", weather_request(",\"tool_choice\":\"none\",\"max_tokens\":" + n));
    const json::Value pv = json::parse(plain.body);
    EXPECT_EQ(pv.at("choices").as_array().at(0).at("message").at("content").as_string(), " " + kScriptedCall);
    EXPECT_FALSE(pv.at("choices").as_array().at(0).at("message").find("tool_calls"));
    EXPECT_EQ(pv.at("choices").as_array().at(0).at("finish_reason").as_string(), "length");
}

TEST(OpenAIRoutes, StreamedToolCallsArriveAsDeltasWithIndexIdAndName) {
    const std::string two = "Checking.\n" + kScriptedCall + "\n" + kScriptedCall;
    test::FakeBackend b(1, two, 512);
    b.gate.open();
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const std::string n = std::to_string(b.script(two).size());
    for (const bool parallel : {true, false}) {
        const Reply r = call(api, "POST", "/v1/chat/completions",
                             weather_request(",\"stream\":true,\"max_tokens\":" + n + ",\"parallel_tool_calls\":" + (parallel ? "true" : "false")));
        ASSERT_EQ(r.status, 200);
        std::string content, finish;
        std::vector<json::Value> deltas;
        for (const auto& ev : events(r.body)) {
            if (ev == "[DONE]") continue;
            const json::Value chunk = json::parse(ev);
            const json::Value& c = chunk.at("choices").as_array().at(0);
            if (const json::Value* t = c.at("delta").find("content")) content += t->as_string();
            if (const json::Value* t = c.at("delta").find("tool_calls")) deltas.push_back(t->as_array().at(0));
            if (!c.at("finish_reason").is_null()) finish = c.at("finish_reason").as_string();
        }
        EXPECT_EQ(content, " Checking.");
        EXPECT_EQ(finish, "tool_calls");
        ASSERT_EQ(deltas.size(), parallel ? 2u : 1u);
        for (std::size_t i = 0; i < deltas.size(); ++i) {
            EXPECT_EQ(deltas[i].at("index").as_number(), double(i));
            EXPECT_EQ(deltas[i].at("id").as_string().size(), 29u);
            EXPECT_EQ(deltas[i].at("function").at("name").as_string(), "get_weather");
            EXPECT_EQ(deltas[i].at("function").at("arguments").as_string(), R"({"city":"Paris"})");
        }
    }
}

// The bundled model knows nothing of tools; a forced call is valid all the same.
TEST(OpenAIRoutes, AForcedToolCallIsValidWithTheBundledModel) {
    const auto file = gguf::File::open(test::model_path("stories260K.gguf"));
    const Tokenizer tok = Tokenizer::from_gguf(file);
    std::vector<std::unique_ptr<AnyModel>> models;
    models.push_back(open_model(file, {.threads = 1}));
    Scheduler slots(std::move(models));
    Api api(tok, slots, chat::Template(chat::Format::chatml), "stories");
    for (const std::string choice : {R"("required")", R"({"type":"function","function":{"name":"get_weather"}})"}) {
        for (const bool stream : {false, true}) {
            const Reply r = call(api, "POST", "/v1/chat/completions",
                                 weather_request(",\"max_tokens\":100,\"parallel_tool_calls\":false,\"tool_choice\":" + choice +
                                                 ",\"stream\":" + (stream ? "true" : "false")));
            ASSERT_EQ(r.status, 200) << r.body;
            json::Value fn;
            std::string finish;
            if (stream) {
                for (const auto& ev : events(r.body)) {
                    if (ev == "[DONE]") continue;
                    const json::Value chunk = json::parse(ev);
                    const json::Value& c = chunk.at("choices").as_array().at(0);
                    if (const json::Value* t = c.at("delta").find("tool_calls")) fn = t->as_array().at(0).at("function");
                    if (!c.at("finish_reason").is_null()) finish = c.at("finish_reason").as_string();
                }
            } else {
                const json::Value v = json::parse(r.body);
                fn = v.at("choices").as_array().at(0).at("message").at("tool_calls").as_array().at(0).at("function");
                finish = v.at("choices").as_array().at(0).at("finish_reason").as_string();
            }
            EXPECT_EQ(finish, "tool_calls") << r.body;
            ASSERT_TRUE(fn.is_object()) << r.body;
            EXPECT_EQ(fn.at("name").as_string(), "get_weather");
            const json::Value args = json::parse(fn.at("arguments").as_string());
            EXPECT_EQ(args.as_object().size(), 1u) << fn.at("arguments").as_string();
            EXPECT_LE(args.at("city").as_string().size(), 16u);
        }
    }
    // A parameter schema the grammar cannot enforce is refused, naming the tool's field.
    const Reply bad = call(api, "POST", "/v1/chat/completions",
                           R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required","tools":[)" + kWeatherTool +
                               R"(,{"type":"function","function":{"name":"f","parameters":{"type":"object","patternProperties":{}}}}]})");
    EXPECT_EQ(bad.status, 400);
    const json::Value e = json::parse(bad.body).at("error");
    EXPECT_EQ(e.at("param").as_string(), "tools[1].function.parameters");
    EXPECT_NE(e.at("message").as_string().find("patternProperties"), std::string::npos) << e.at("message").as_string();
}

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Dates a template takes from the clock, as "26 Jul 2024" or "Jul 26 2024".
std::string dates_masked(const std::string& s) {
    static const std::regex date(R"(\b(\d{1,2} [A-Z][a-z]{2} \d{4}|[A-Z][a-z]{2} \d{1,2} \d{4})\b)");
    return std::regex_replace(s, date, "<date>");
}

const json::Value kConversations = json::parse(R"([
    {"messages": [{"role": "user", "content": "Hi"}]},
    {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"},
                  {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}]},
    {"messages": [{"role": "user", "content": "What is the weather in Paris?"}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}])");

// Real templates and llama.cpp's renders of them (its own Jinja engine): POST /apply-template with each
// template's text and BOS/EOS writes the same prompts, dates masked.
TEST(OpenAIApplyTemplate, RendersEachReferenceTemplateAsLlamaCppDid) {
    test::FakeBackend b(1, "Once");
    Api api(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "stories");
    const std::string dir = test::testdata("chat-templates/");
    std::istringstream list(read_text(dir + "tokens.txt"));
    int templates = 0;
    for (std::string line; std::getline(list, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        std::string name, bos, eos;
        fields >> name >> bos >> eos;
        const std::string text = read_text(dir + name + ".jinja");
        ASSERT_FALSE(text.empty()) << name;
        for (std::size_t i = 0; i < kConversations.as_array().size(); ++i) {
            json::Value body = kConversations.as_array()[i];
            body.set("chat_template", text);
            body.set("bos_token", bos == "-" ? "" : bos);
            body.set("eos_token", eos == "-" ? "" : eos);
            body.set("add_generation_prompt", true);
            body.set("enable_thinking", false);
            const Reply r = call(api, "POST", "/apply-template", json::dump(body));
            ASSERT_EQ(r.status, 200) << name << " conv" << i + 1 << ": " << r.body;
            const std::string want = read_text(dir + name + ".conv" + std::to_string(i + 1) + ".txt");
            EXPECT_EQ(dates_masked(json::parse(r.body).at("prompt").as_string()), dates_masked(want)) << name << " conv" << i + 1;
        }
        ++templates;
    }
    EXPECT_EQ(templates, 5);
}

TEST(OpenAIApplyTemplate, TheModelsOwnTemplateAndWhatTemplatesRefuse) {
    test::FakeBackend b(1, "Once");
    b.gate.open();
    const std::string qwen = read_text(test::testdata("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja"));
    Api api(b.tok, *b.scheduler, chat::Template(std::string_view(qwen)), "stories");
    EXPECT_EQ(api.tool_call_format(), chat::ToolCallFormat::hermes);
    // Without chat_template: the model's own, add_generation_prompt true by default.
    const Reply own = call(api, "POST", "/apply-template", json::dump(kConversations.as_array()[0]));
    ASSERT_EQ(own.status, 200) << own.body;
    EXPECT_EQ(json::parse(own.body).at("prompt").as_string(), read_text(test::testdata("chat-templates/Qwen-Qwen2.5-7B-Instruct.conv1.txt")));
    const Reply no_prompt = call(api, "POST", "/apply-template", R"({"messages":[{"role":"user","content":"Hi"}],"add_generation_prompt":false})");
    EXPECT_EQ(json::parse(no_prompt.body).at("prompt").as_string().find("<|im_start|>assistant"), std::string::npos);

    const auto refused = [&](const std::string& body, const std::string& param, const std::string& fragment) {
        const Reply r = call(api, "POST", "/apply-template", body);
        EXPECT_EQ(r.status, 400) << body;
        const json::Value e = json::parse(r.body).at("error");
        EXPECT_EQ(e.at("param").as_string(), param) << r.body;
        EXPECT_NE(e.at("message").as_string().find(fragment), std::string::npos) << r.body;
    };
    refused(R"({"messages":[{"role":"user","content":"Hi"}],"chat_template":"{{ raise_exception('only tools here') }}"})", "chat_template", "only tools here");
    refused(R"({"messages":[{"role":"user","content":"Hi"}],"chat_template":"{% for %}"})", "chat_template", "1:");
    refused(R"({"messages":[{"role":"user","content":"Hi"}],"chat_template":5})", "chat_template", "must be a string");
    refused(R"({"messages":[{"role":"user","content":"Hi"}],"chat_template":"x","bos_token":1})", "bos_token", "must be a string");
    refused(R"({"messages":[]})", "messages", "must not be empty");
    refused(R"({"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function"}]})", "tools[0].function", "is required");

    // The chat route renders with the model's template too; a conversation it refuses is a 400.
    Api strict(b.tok, *b.scheduler, chat::Template(std::string_view("{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}{{ messages[0].content }}")),
               "stories");
    EXPECT_EQ(call(strict, "POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":1})").status, 200);
    const Reply r = call(strict, "POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"},{"role":"user","content":"Again"}]})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body).at("error").at("param").as_string(), "messages");
    EXPECT_NE(r.body.find("one message only"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace forge::serve
