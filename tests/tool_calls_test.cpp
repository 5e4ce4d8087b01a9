// Tool calls read back from replies: the format comes from the real templates' own instructions, each
// format's calls parse into names and argument objects with fresh ids, anything malformed stays plain
// text, and the streaming parser, fed any split of a reply, releases plain text early, holds back only
// what may start a call, and ends with exactly what parsing the whole reply gives. The grammar of forced
// calls takes each format's calls with arguments valid against the tool's schema, and nothing else.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "forge/chat/tool_calls.hpp"
#include "forge/grammar/matcher.hpp"
#include "forge/json/json.hpp"
#include "testdata.hpp"

namespace forge::chat {
namespace {

std::string read_template(const std::string& name) {
    std::ifstream f(test::testdata("chat-templates/" + name + ".jinja"), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_FALSE(ss.str().empty()) << name;
    return ss.str();
}

TEST(ToolCallFormat, ComesFromWhatEachRealTemplateTellsItsModel) {
    EXPECT_EQ(tool_call_format(read_template("Qwen-Qwen2.5-7B-Instruct")), ToolCallFormat::hermes);
    EXPECT_EQ(tool_call_format(read_template("meta-llama-Llama-3.1-8B-Instruct")), ToolCallFormat::llama3);
    EXPECT_EQ(tool_call_format(read_template("mistralai-Mistral-Nemo-Instruct-2407")), ToolCallFormat::mistral);
    // No tool-call instructions: the default.
    EXPECT_EQ(tool_call_format(read_template("microsoft-Phi-3.5-mini-instruct")), ToolCallFormat::hermes);
    EXPECT_EQ(tool_call_format(""), ToolCallFormat::hermes);
    // Mistral's later [TOOL_CALLS]name[ARGS]{...} form is not Nemo's JSON list.
    EXPECT_EQ(tool_call_format("[TOOL_CALLS]' + name + '[ARGS]"), ToolCallFormat::hermes);
}

TEST(ToolCallIds, AreOpenAIShapedAndNineAlphanumericsForMistral) {
    const std::string a = new_tool_call_id(ToolCallFormat::hermes), b = new_tool_call_id(ToolCallFormat::hermes);
    EXPECT_EQ(a.rfind("call_", 0), 0u);
    EXPECT_EQ(a.size(), 29u);
    EXPECT_NE(a, b);
    const std::string m = new_tool_call_id(ToolCallFormat::mistral);
    EXPECT_EQ(m.size(), 9u);
    for (const char c : m) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << m;
}

std::string args_of(const ToolCall& c) { return json::dump(c.arguments); }

TEST(ToolCallParse, HermesCallsAmongText) {
    const ParsedReply r = parse_tool_calls(ToolCallFormat::hermes,
                                           "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
                                           "<tool_call>\n{\"arguments\": {\"city\": \"Rome\", \"days\": [1, 2]}, \"name\": \"get_weather\"}\n</tool_call>");
    EXPECT_EQ(r.content, "Let me look.");
    ASSERT_EQ(r.tool_calls.size(), 2u);
    EXPECT_EQ(r.tool_calls[0].name, "get_weather");
    EXPECT_EQ(args_of(r.tool_calls[0]), R"({"city":"Paris"})");
    EXPECT_EQ(args_of(r.tool_calls[1]), R"({"city":"Rome","days":[1,2]})");
    EXPECT_NE(r.tool_calls[0].id, r.tool_calls[1].id);
    EXPECT_EQ(r.tool_calls[0].id.rfind("call_", 0), 0u);

    // Arguments written as a string of JSON, and a call the model ended its turn in before the closing tag.
    const ParsedReply s = parse_tool_calls(ToolCallFormat::hermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}\n");
    EXPECT_EQ(s.content, "");
    ASSERT_EQ(s.tool_calls.size(), 1u);
    EXPECT_EQ(args_of(s.tool_calls[0]), R"({"x":1})");
    // No arguments at all: an empty object.
    EXPECT_EQ(args_of(parse_tool_calls(ToolCallFormat::hermes, "<tool_call>{\"name\": \"now\"}</tool_call>").tool_calls.at(0)), "{}");
}

TEST(ToolCallParse, Llama3WholeReplyWithOrWithoutPythonTag) {
    for (const std::string reply : {"{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
                                    "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}\n",
                                    "  {\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}"}) {
        const ParsedReply r = parse_tool_calls(ToolCallFormat::llama3, reply);
        EXPECT_EQ(r.content, "") << reply;
        ASSERT_EQ(r.tool_calls.size(), 1u) << reply;
        EXPECT_EQ(r.tool_calls[0].name, "get_weather");
        EXPECT_EQ(args_of(r.tool_calls[0]), R"({"city":"Paris"})");
    }
    const ParsedReply two = parse_tool_calls(ToolCallFormat::llama3, R"({"name": "a", "parameters": {}}; {"name": "b", "parameters": {"k": "}"}})");
    ASSERT_EQ(two.tool_calls.size(), 2u);
    EXPECT_EQ(two.tool_calls[1].name, "b");
    EXPECT_EQ(args_of(two.tool_calls[1]), R"({"k":"}"})");
    // Text before the JSON, or a JSON answer that is not a call, is content.
    for (const std::string plain : {"Sure: {\"name\": \"a\", \"parameters\": {}}", "{\"answer\": 4}", "{\"name\": \"a\", \"parameters\": [1]}",
                                    "{\"name\": \"a\", \"parameters\": {}} and more"})
        EXPECT_EQ(parse_tool_calls(ToolCallFormat::llama3, plain).content, plain);
}

TEST(ToolCallParse, MistralNemoList) {
    for (const std::string reply : {R"([TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "t", "arguments": {}}])",
                                    R"( [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcdefghi"}, {"name": "t", "arguments": {}}])"}) {
        const ParsedReply r = parse_tool_calls(ToolCallFormat::mistral, reply);
        EXPECT_EQ(r.content, "");
        ASSERT_EQ(r.tool_calls.size(), 2u) << reply;
        EXPECT_EQ(r.tool_calls[0].name, "get_weather");
        EXPECT_EQ(args_of(r.tool_calls[0]), R"({"city":"Paris"})");
        EXPECT_EQ(r.tool_calls[0].id.size(), 9u);
    }
    EXPECT_EQ(parse_tool_calls(ToolCallFormat::mistral, "[1, 2]").content, "[1, 2]");
    EXPECT_EQ(parse_tool_calls(ToolCallFormat::mistral, "[link](x)").content, "[link](x)");
}

TEST(ToolCallParse, MalformedCallsStayPlainText) {
    for (const std::string bad : {"<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }\n</tool_call>",  // bad JSON
                                  "<tool_call>{\"arguments\": {}}</tool_call>",                            // no name
                                  "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>",            // empty name
                                  "<tool_call>{\"name\": \"f\", \"arguments\": 3}</tool_call>",            // arguments not an object
                                  "<tool_call>{\"name\": \"f\", \"arguments\": \"not json\"}</tool_call>",
                                  "<tool_call>[1]</tool_call>", "a <tool_call> b", "<tool_call", "x </tool_call> y"}) {
        const ParsedReply r = parse_tool_calls(ToolCallFormat::hermes, bad);
        EXPECT_TRUE(r.tool_calls.empty()) << bad;
        EXPECT_EQ(r.content, bad);
    }
    // One bad call among good ones: the good ones count, the bad one's text is content.
    const ParsedReply mixed = parse_tool_calls(ToolCallFormat::hermes, "<tool_call>{\"name\": \"f\"}</tool_call>\n<tool_call>{oops}</tool_call>");
    EXPECT_EQ(mixed.tool_calls.size(), 1u);
    EXPECT_EQ(mixed.content, "<tool_call>{oops}</tool_call>");
}

TEST(ToolCallParse, PlainRepliesComeBackByteForByte) {
    for (const auto f : {ToolCallFormat::hermes, ToolCallFormat::llama3, ToolCallFormat::mistral})
        for (const std::string plain : {" Once upon a time.\n\n", "", "\n", "<b>bold</b> < tool", "{not json", "[x"})
            EXPECT_EQ(parse_tool_calls(f, plain).content, plain) << tool_call_format_name(f) << ": " << plain;
}

// Feeds `reply` in pieces of `step` bytes, checking what is released along the way.
ParsedReply streamed(ToolCallFormat f, const std::string& reply, std::size_t step) {
    ToolCallParser p(f);
    ParsedReply all;
    const auto add = [&](ParsedReply part) {
        all.content += part.content;
        for (auto& c : part.tool_calls) all.tool_calls.push_back(std::move(c));
    };
    for (std::size_t at = 0; at < reply.size(); at += step) add(p.feed(reply.substr(at, step)));
    add(p.finish());
    return all;
}

TEST(ToolCallStream, AnySplitEndsAsTheWholeReplyParses) {
    const std::vector<std::pair<ToolCallFormat, std::string>> replies = {
        {ToolCallFormat::hermes, "I will check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
                                 "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"},
        {ToolCallFormat::hermes, "a <tool_ b <tool_call>{bad}</tool_call> c"},
        {ToolCallFormat::hermes, " Once upon a time there was a dog.\n"},
        {ToolCallFormat::llama3, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"},
        {ToolCallFormat::llama3, "The answer is 4."},
        {ToolCallFormat::mistral, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]"},
        {ToolCallFormat::mistral, "[not a call]"}};
    for (const auto& [f, reply] : replies) {
        const ParsedReply whole = parse_tool_calls(f, reply);
        for (const std::size_t step : {std::size_t(1), std::size_t(2), std::size_t(5), std::size_t(13), reply.size()}) {
            const ParsedReply s = streamed(f, reply, step);
            EXPECT_EQ(s.content, whole.content) << reply << " in pieces of " << step;
            ASSERT_EQ(s.tool_calls.size(), whole.tool_calls.size()) << reply << " in pieces of " << step;
            for (std::size_t i = 0; i < s.tool_calls.size(); ++i) {
                EXPECT_EQ(s.tool_calls[i].name, whole.tool_calls[i].name);
                EXPECT_EQ(args_of(s.tool_calls[i]), args_of(whole.tool_calls[i]));
            }
        }
    }
}

TEST(ToolCallStream, PlainTextIsReleasedAsItComesAndCallsWhenComplete) {
    ToolCallParser p(ToolCallFormat::hermes);
    EXPECT_EQ(p.feed("Hello").content, "Hello");
    EXPECT_EQ(p.feed(" world <tool").content, " world") << "the space and what may open a call wait";
    EXPECT_EQ(p.feed("bar> ok").content, " <toolbar> ok") << "not a call after all";
    ParsedReply r = p.feed("\n<tool_call>\n{\"name\": \"f\", \"argu");
    EXPECT_EQ(r.content, "");
    EXPECT_TRUE(r.tool_calls.empty());
    r = p.feed("ments\": {\"a\": 1}}\n</tool_call>\n");
    ASSERT_EQ(r.tool_calls.size(), 1u);
    EXPECT_EQ(r.tool_calls[0].name, "f");
    r = p.finish();
    EXPECT_EQ(r.content, "") << "whitespace after the last call is dropped";

    // A whole-reply format releases a reply as soon as it cannot be a call.
    ToolCallParser l(ToolCallFormat::llama3);
    EXPECT_EQ(l.feed("  ").content, "");
    EXPECT_EQ(l.feed("The").content, "  The");
    ToolCallParser held(ToolCallFormat::llama3);
    EXPECT_EQ(held.feed("{\"name\": \"f\"").content, "");
    EXPECT_EQ(held.feed(", \"parameters\": {}}").tool_calls.size(), 0u) << "known only at the end";
    EXPECT_EQ(held.finish().tool_calls.size(), 1u);
}

const json::Value kWeatherSchema = json::parse(R"({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})");

bool matches(const grammar::Grammar& g, std::string_view text) {
    grammar::Matcher m(std::make_shared<const grammar::Grammar>(g));
    return m.feed(text) && m.complete();
}

TEST(ToolCallGrammar, WritesEachFormatsCallsAsItsParserReadsThem) {
    const std::vector<ToolSchema> tools = {{"get_weather", kWeatherSchema}, {"now", json::Value()}};
    const std::vector<std::pair<ToolCallFormat, std::string>> calls = {
        {ToolCallFormat::hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"},
        {ToolCallFormat::llama3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"},
        {ToolCallFormat::mistral, "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]"}};
    for (const auto& [f, text] : calls) {
        const grammar::Grammar g = tool_call_grammar(f, tools, false);
        EXPECT_TRUE(matches(g, text)) << text;
        const ParsedReply r = parse_tool_calls(f, text);
        ASSERT_EQ(r.tool_calls.size(), 1u) << text;
        EXPECT_EQ(args_of(r.tool_calls[0]), R"({"city":"Paris"})");
        // Arguments against the schema: the required key, of its type.
        std::string missing = text, wrong_type = text, other_tool = text;
        missing.replace(missing.find("\"city\": \"Paris\""), 15, "");
        wrong_type.replace(wrong_type.find("\"Paris\""), 7, "3");
        other_tool.replace(other_tool.find("get_weather"), 11, "get_whether");
        EXPECT_FALSE(matches(g, missing)) << missing;
        EXPECT_FALSE(matches(g, wrong_type)) << wrong_type;
        EXPECT_FALSE(matches(g, other_tool)) << other_tool;
        EXPECT_FALSE(matches(g, "The weather is fine.")) << "only calls";
    }
    // A tool without a schema takes any object.
    EXPECT_TRUE(matches(tool_call_grammar(ToolCallFormat::hermes, tools, false),
                        "<tool_call>\n{\"name\": \"now\", \"arguments\": {\"tz\": [1]}}\n</tool_call>"));
}

TEST(ToolCallGrammar, ParallelCallsWhereTheFormatHasThem) {
    const std::vector<ToolSchema> tools = {{"get_weather", kWeatherSchema}};
    const std::string one = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    EXPECT_TRUE(matches(tool_call_grammar(ToolCallFormat::hermes, tools, true), one + "\n" + one));
    EXPECT_FALSE(matches(tool_call_grammar(ToolCallFormat::hermes, tools, false), one + "\n" + one));
    const std::string two = "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"A\"}}, {\"name\": \"get_weather\", \"arguments\": {\"city\": \"B\"}}]";
    EXPECT_TRUE(matches(tool_call_grammar(ToolCallFormat::mistral, tools, true), two));
    EXPECT_EQ(parse_tool_calls(ToolCallFormat::mistral, two).tool_calls.size(), 2u);
    EXPECT_FALSE(matches(tool_call_grammar(ToolCallFormat::mistral, tools, false), two));
}

TEST(ToolCallGrammar, AnUnsupportedSchemaNamesItsTool) {
    const std::vector<ToolSchema> tools = {{"ok", kWeatherSchema}, {"bad", json::parse(R"({"type": "object", "patternProperties": {"^x": {}}})")}};
    try {
        tool_call_grammar(ToolCallFormat::hermes, tools, false);
        ADD_FAILURE() << "accepted";
    } catch (const ToolSchemaError& e) {
        EXPECT_EQ(e.index, 1u);
        EXPECT_NE(std::string(e.what()).find("tool 'bad'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("'patternProperties'"), std::string::npos) << e.what();
    }
    EXPECT_THROW(tool_call_grammar(ToolCallFormat::hermes, {}, false), Error);
}

}  // namespace
}  // namespace forge::chat
