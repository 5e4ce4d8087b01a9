// Grammars and constrained generation: the builder's pieces match what they say byte by byte; JSON
// schemas accept valid documents and reject invalid ones at the byte where they go wrong; unsupported
// and hostile schemas fail with a forge::Error naming the problem; the token mask equals matching each
// token alone; and generation by stories260K at temperature 1.5 under a schema always yields JSON that
// parses and validates (checked by a validator written here, not by the grammar).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "forge/forge.hpp"
#include "forge/grammar/grammar.hpp"
#include "forge/grammar/json_schema.hpp"
#include "forge/grammar/matcher.hpp"
#include "forge/grammar/token_mask.hpp"
#include "forge/json/json.hpp"
#include "testdata.hpp"

namespace forge::grammar {
namespace {

constexpr std::size_t kAll = std::string::npos;

// The offset of the first byte `text` can't continue with (kAll when every byte is accepted).
std::size_t rejected_at(Matcher& m, std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!m.feed(text.substr(i, 1))) return i;
    return kAll;
}

std::shared_ptr<const Grammar> schema_grammar(std::string_view schema) {
    return std::make_shared<const Grammar>(json_schema_grammar(json::parse(schema)));
}

// Whole `text` matches: every byte continues and the end completes the document.
bool matches(const std::shared_ptr<const Grammar>& g, std::string_view text) {
    Matcher m(g);
    return rejected_at(m, text) == kAll && m.complete();
}

std::size_t rejected_at(const std::shared_ptr<const Grammar>& g, std::string_view text) {
    Matcher m(g);
    return rejected_at(m, text);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(GrammarBuilder, LiteralsClassesAndRepetition) {
    Builder b;
    const Expr digits = b.repeat(b.chars({{'0', '9'}}), 2, 4);
    const auto g = std::make_shared<const Grammar>(b.build(b.seq({b.literal("n="), digits, b.optional(b.literal("!"))})));
    EXPECT_TRUE(matches(g, "n=12"));
    EXPECT_TRUE(matches(g, "n=1234!"));
    EXPECT_FALSE(matches(g, "n=1"));               // too few: a prefix, not complete
    EXPECT_EQ(rejected_at(g, "n=12345"), 6u);      // too many
    EXPECT_EQ(rejected_at(g, "m=12"), 0u);
    EXPECT_EQ(rejected_at(g, "n=1x"), 3u);
    Matcher m(g);
    ASSERT_TRUE(m.feed("n=12"));
    EXPECT_TRUE(m.complete());
    EXPECT_TRUE(m.can_continue());
    ASSERT_TRUE(m.feed("34!"));
    EXPECT_TRUE(m.complete());
    EXPECT_FALSE(m.can_continue());
    EXPECT_FALSE(m.feed("!"));  // refused, state unchanged
    EXPECT_TRUE(m.complete());
}

TEST(GrammarBuilder, CharacterClassesAreUtf8) {
    Builder b;
    // Anything but a quote, a backslash or a control character, twice.
    const Expr c = b.chars({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}}, true);
    const auto g = std::make_shared<const Grammar>(b.build(b.repeat(c, 2, 2)));
    EXPECT_TRUE(matches(g, "ab"));
    EXPECT_TRUE(matches(g, "\xC3\xA9z"));              // é, z
    EXPECT_TRUE(matches(g, "\xE2\x82\xAC\xF0\x9F\x98\x80"));  // €, 😀
    EXPECT_FALSE(matches(g, "\xC3\xA9"));              // one character
    EXPECT_EQ(rejected_at(g, "a\""), 1u);
    EXPECT_EQ(rejected_at(g, "\x80"), 0u);              // a continuation byte can't start a character
    EXPECT_EQ(rejected_at(g, "\xC0\x80"), 0u);          // overlong
    EXPECT_EQ(rejected_at(g, "\xED\xA0\x80"), 1u);      // a surrogate
    EXPECT_EQ(rejected_at(g, "\xF4\x90\x80\x80"), 1u);  // past U+10FFFF

    Builder greek;
    const auto g2 = std::make_shared<const Grammar>(greek.build(greek.chars({{0x391, 0x3A9}})));  // Α..Ω
    EXPECT_TRUE(matches(g2, "\xCE\x91"));
    EXPECT_TRUE(matches(g2, "\xCE\xA9"));
    EXPECT_EQ(rejected_at(g2, "\xCE\xAA"), 1u);
}

TEST(GrammarBuilder, RecursionAndAlternatives) {
    Builder b;
    // Balanced parentheses.
    const Expr p = b.rule("parens");
    b.define(p, b.repeat(b.seq({b.literal("("), p, b.literal(")")}), 0, kUnbounded));
    const auto g = std::make_shared<const Grammar>(b.build(p));
    EXPECT_TRUE(matches(g, ""));
    EXPECT_TRUE(matches(g, "(()())()"));
    EXPECT_FALSE(matches(g, "(()"));
    EXPECT_EQ(rejected_at(g, "())"), 2u);

    Builder w;
    const auto words = std::make_shared<const Grammar>(w.build(w.one_of_literals({"cat", "car", "cart", "dog", ""})));
    for (const char* ok : {"cat", "car", "cart", "dog", ""}) EXPECT_TRUE(matches(words, ok)) << ok;
    EXPECT_FALSE(matches(words, "ca"));
    EXPECT_EQ(rejected_at(words, "cars"), 3u);
}

TEST(GrammarBuilder, BadGrammarsAreErrors) {
    {
        Builder b;
        const Expr r = b.rule("list");
        b.define(r, b.any({b.seq({r, b.literal(",x")}), b.literal("x")}));
        EXPECT_EQ(error_of([&] { b.build(r); }), "grammar: rule 'list' is left-recursive");
    }
    {
        Builder b;
        const Expr r = b.rule("forever");
        b.define(r, b.seq({b.literal("["), r, b.literal("]")}));
        EXPECT_EQ(error_of([&] { b.build(r); }), "grammar: no finite text completes rule 'forever'");
    }
    {
        Builder b;
        const Expr r = b.rule("missing");
        EXPECT_EQ(error_of([&] { b.build(b.seq({b.literal("a"), r})); }), "grammar: rule 'missing' is used but never defined");
    }
    {
        Builder b;
        EXPECT_NE(error_of([&] { b.build(b.repeat(b.literal("abcd"), 3000000, 3000000)); }).find("more than 2097152 elements"), std::string::npos);
    }
    EXPECT_NE(error_of([] { Builder().repeat(Expr{}, 3, 2); }).find("bad repetition"), std::string::npos);
}

TEST(GrammarMatcher, AmbiguityIsBoundedAndAnError) {
    Builder b;
    std::vector<Expr> same;
    for (int i = 0; i < 3000; ++i) same.push_back(b.literal("ab" + std::to_string(i)));
    const auto g = std::make_shared<const Grammar>(b.build(b.seq({b.literal("<"), b.any(same)})));
    Matcher m(g, MatchLimits{.max_stacks = 4000});
    EXPECT_TRUE(m.feed("<ab2999"));
    Matcher tight(g);
    EXPECT_TRUE(tight.feed("<"));
    EXPECT_NE(error_of([&] { tight.feed("a"); }).find("more than 1024 parse stacks"), std::string::npos);
}

// --- JSON schema -> grammar ---

TEST(JsonSchema, ObjectsRequiredOptionalAndAdditional) {
    const auto g = schema_grammar(R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
        "nick":{"type":"string"}},"required":["name","age"],"additionalProperties":false})");
    EXPECT_TRUE(matches(g, R"({"name":"Ann","age":31})"));
    EXPECT_TRUE(matches(g, R"({"name":"Ann","age":31,"nick":"A"})"));
    EXPECT_TRUE(matches(g, " {\n  \"name\": \"Ann\",\n  \"age\": -7\n}\n"));
    EXPECT_EQ(rejected_at(g, R"({"age":31,"name":"Ann"})"), 2u);           // required ones first, in order
    EXPECT_EQ(rejected_at(g, R"({"name":"Ann"})"), 13u);                   // age is missing
    EXPECT_EQ(rejected_at(g, R"({"name":"Ann","age":"31"})"), 20u);        // wrong type
    EXPECT_EQ(rejected_at(g, R"({"name":"Ann","age":31,"x":1})"), 24u);    // additionalProperties false
    EXPECT_EQ(rejected_at(g, R"({"name":"Ann","age":31.5})"), 22u);        // an integer
    EXPECT_EQ(rejected_at(g, R"({"name":"Ann","age":031})"), 21u);         // no leading zeros
    EXPECT_EQ(rejected_at(g, "{\"name\":\"A\"    ,"), 12u);                // at most one space in a row

    // Without additionalProperties false, keys other than the listed ones may follow (any number).
    const auto open = schema_grammar(R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"boolean"}})");
    EXPECT_TRUE(matches(open, R"({})"));
    EXPECT_TRUE(matches(open, R"({"a":1,"b":true,"ab":false})"));
    EXPECT_TRUE(matches(open, R"({"b":true})"));
    EXPECT_EQ(rejected_at(open, R"({"b":1})"), 5u);
    EXPECT_EQ(rejected_at(open, R"({"a":1,"a":2})"), 9u);  // a listed key is not an additional one
    // {"type":"object"} alone: any object.
    EXPECT_TRUE(matches(schema_grammar(R"({"type":"object"})"), R"({"x":[1,{"y":null}],"z":"\u00e9\n"})"));
}

TEST(JsonSchema, ArraysStringsEnumsAndConst) {
    const auto g = schema_grammar(R"({"type":"array","items":{"enum":["red","green",3,null]},"minItems":1,"maxItems":3})");
    EXPECT_TRUE(matches(g, R"(["red"])"));
    EXPECT_TRUE(matches(g, R"(["red", 3, null])"));
    EXPECT_FALSE(matches(g, R"([])"));
    EXPECT_EQ(rejected_at(g, R"([])"), 1u);
    EXPECT_EQ(rejected_at(g, R"(["red",3,null,3])"), 13u);  // maxItems
    EXPECT_EQ(rejected_at(g, R"(["blue"])"), 2u);           // not in the enum

    const auto tuple = schema_grammar(R"({"prefixItems":[{"type":"boolean"},{"type":"number"}],"items":{"type":"string"}})");
    EXPECT_TRUE(matches(tuple, R"([true,1.5e3,"x","y"])"));
    EXPECT_TRUE(matches(tuple, R"([])"));
    EXPECT_EQ(rejected_at(tuple, R"([1])"), 1u);
    const auto closed = schema_grammar(R"({"prefixItems":[{"type":"boolean"}],"minItems":1})");
    EXPECT_TRUE(matches(closed, R"([false])"));
    EXPECT_EQ(rejected_at(closed, R"([false,true])"), 6u);

    const auto s = schema_grammar(R"({"type":"string","minLength":2,"maxLength":3})");
    EXPECT_TRUE(matches(s, R"("ab")"));
    EXPECT_TRUE(matches(s, R"("a\u00e9\n")"));  // escapes count as one character each
    EXPECT_TRUE(matches(s, "\"\xC3\xA9\xC3\xA9\""));
    EXPECT_EQ(rejected_at(s, R"("a")"), 2u);
    EXPECT_EQ(rejected_at(s, R"("abcd")"), 4u);
    EXPECT_EQ(rejected_at(s, "\"a\nb\""), 2u);     // a raw control character
    EXPECT_EQ(rejected_at(s, R"("\ud800")"), 7u);  // a lone surrogate escape
    EXPECT_TRUE(matches(s, R"("\ud83d\ude00x")"));  // a pair is one character

    const auto c = schema_grammar(R"({"const":{"k":[1,"two"]}})");
    EXPECT_TRUE(matches(c, R"({"k":[1,"two"]})"));
    EXPECT_EQ(rejected_at(c, R"({"k":[1,"too"]})"), 10u);
}

TEST(JsonSchema, TypesAnyOfRefsAndFormats) {
    const auto g = schema_grammar(R"({"type":["integer","null"]})");
    EXPECT_TRUE(matches(g, "12"));
    EXPECT_TRUE(matches(g, "null"));
    EXPECT_EQ(rejected_at(g, "true"), 0u);

    const auto any = schema_grammar(R"({"anyOf":[{"type":"string","maxLength":1},{"type":"boolean"}],"description":"x"})");
    EXPECT_TRUE(matches(any, R"("a")"));
    EXPECT_TRUE(matches(any, "false"));
    EXPECT_EQ(rejected_at(any, R"("ab")"), 2u);

    // A recursive tree through $defs.
    const auto tree = schema_grammar(R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{
        "v":{"type":"integer","minimum":0},"kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"],
        "additionalProperties":false}}})");
    EXPECT_TRUE(matches(tree, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4,"kids":[]}]}]})"));
    EXPECT_EQ(rejected_at(tree, R"({"v":1,"kids":[{"v":-2}]})"), 20u);  // minimum 0
    EXPECT_EQ(rejected_at(tree, R"({"v":1,"kids":[{"w":2}]})"), 17u);
    const auto linked = schema_grammar(R"({"definitions":{"l":{"type":["object","null"],"properties":{"next":{"$ref":"#/definitions/l"}},
        "required":["next"]}},"$ref":"#/definitions/l"})");
    EXPECT_TRUE(matches(linked, R"({"next":{"next":null}})"));

    const auto all = schema_grammar(R"({"allOf":[{"properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false},
        {"$ref":"#/$defs/b"}],"$defs":{"b":{"type":"object","properties":{"b":{"type":"boolean"}}}}})");
    EXPECT_TRUE(matches(all, R"({"a":1,"b":true})"));
    EXPECT_TRUE(matches(all, R"({"a":1})"));
    EXPECT_EQ(rejected_at(all, R"({"b":true})"), 2u);

    const auto f = schema_grammar(R"({"type":"object","properties":{"d":{"type":"string","format":"date"},
        "t":{"format":"date-time"},"u":{"type":"string","format":"uuid"}},"required":["d","t","u"]})");
    EXPECT_TRUE(matches(f, R"({"d":"2026-12-04","t":"2026-12-04T11:25:19.5Z","u":"123e4567-e89b-12d3-a456-426614174000"})"));
    EXPECT_EQ(rejected_at(f, R"({"d":"2026-13-04")"), 12u);
    EXPECT_EQ(rejected_at(f, R"({"d":"2026-12-04","t":"2026-12-04T25)"), 35u);
}

TEST(JsonSchema, Patterns) {
    const auto code = schema_grammar(R"({"type":"string","pattern":"^[A-Z]{2}-\\d{3,4}(\\.[a-z]+)?$"})");
    EXPECT_TRUE(matches(code, R"("AB-123")"));
    EXPECT_TRUE(matches(code, R"("XY-1234.ext")"));
    EXPECT_EQ(rejected_at(code, R"("Ab-123")"), 2u);
    EXPECT_EQ(rejected_at(code, R"("AB-12345")"), 8u);
    EXPECT_FALSE(matches(code, R"("AB-12")"));
    // Unanchored: anywhere in the string; characters JSON escapes are written escaped.
    const auto has = schema_grammar(R"({"pattern":"a\"b|\\n"})");
    EXPECT_TRUE(matches(has, R"("xx a\"b yy")"));
    EXPECT_TRUE(matches(has, R"("line\nbreak")"));
    EXPECT_FALSE(matches(has, R"("ab")"));
    const auto any = schema_grammar(R"({"pattern":"^[^a]*.$"})");
    EXPECT_TRUE(matches(any, "\"\xC3\xA9\\t\\\"z\""));  // é, an escaped tab and quote, z
    EXPECT_EQ(rejected_at(any, R"("bab")"), 3u);
    const auto alt = schema_grammar(R"({"pattern":"^(cat|dog)s?$"})");
    for (const char* ok : {R"("cat")", R"("dogs")"}) EXPECT_TRUE(matches(alt, ok)) << ok;
    EXPECT_EQ(rejected_at(alt, R"("cow")"), 2u);
}

TEST(JsonSchema, UnsupportedKeywordsNameTheKeywordAndPath) {
    const auto err = [](std::string_view schema) { return error_of([&] { json_schema_grammar(json::parse(schema)); }); };
    EXPECT_EQ(err(R"({"type":"object","properties":{"x":{"type":"object","patternProperties":{}}}})"),
              "json_schema: unsupported keyword 'patternProperties' at /properties/x");
    EXPECT_EQ(err(R"({"type":"string","pattern":"^(a)\\1$"})"), "json_schema: unsupported 'pattern' (regex: unsupported escape at offset 4) at the root");
    EXPECT_EQ(err(R"({"type":"string","pattern":"^(?=a)$"})"), "json_schema: unsupported 'pattern' (regex: unsupported group (only (?:...) is) at offset 3) at the root");
    EXPECT_EQ(err(R"({"pattern":"a","maxLength":3})"), "json_schema: 'pattern' together with 'format', 'minLength' or 'maxLength' is unsupported at the root");
    EXPECT_EQ(err(R"({"type":"array","items":{"type":"integer","maximum":3}})"), "json_schema: unsupported keyword 'maximum' at /items");
    EXPECT_EQ(err(R"({"anyOf":[{"type":"null"},{"not":{}}]})"), "json_schema: unsupported keyword 'not' at /anyOf/1");
    EXPECT_EQ(err(R"({"type":"string","format":"email"})"),
              "json_schema: unsupported format 'email' (date, time, date-time and uuid are supported) at the root");
    EXPECT_EQ(err(R"({"type":"integer","minimum":5})"), "json_schema: unsupported 'minimum' (only 0 is supported) at the root");
    EXPECT_EQ(err(R"({"type":"strange"})"), "json_schema: unknown type 'strange' at the root");
    EXPECT_EQ(err(R"({"$ref":"http://example.com/s.json"})"),
              "json_schema: '$ref' \"http://example.com/s.json\" does not resolve (only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\" do) "
              "at the root");
    EXPECT_NE(err(R"({"properties":{"a/b":{"$ref":"#/$defs/none"}}})").find("at /properties/a~1b"), std::string::npos);
    EXPECT_EQ(err(R"({"type":"object","properties":{"a":{}},"required":["b"]})"), "json_schema: required property 'b' is not in 'properties' at the root");
    EXPECT_EQ(err(R"({"type":"array","minItems":3,"maxItems":2})"), "json_schema: 'minItems' is more than the array can hold at the root");
    EXPECT_EQ(err(R"({"type":"string","maxLength":-1})"), "json_schema: 'maxLength' must be a non-negative integer at the root");
    EXPECT_EQ(err("false"), "json_schema: the schema false matches nothing at the root");
    EXPECT_EQ(err(R"({"anyOf":[{"type":"null"}],"type":"string"})"), "json_schema: 'anyOf' together with other keywords is unsupported at the root");
}

TEST(JsonSchema, HostileSchemasFailCleanly) {
    const auto err = [](const json::Value& schema) { return error_of([&] { json_schema_grammar(schema); }); };
    // Nested 2000 deep (built directly: the JSON reader stops at 64 itself).
    json::Value deep = json::Object{{"type", "string"}};
    for (int i = 0; i < 2000; ++i) deep = json::Object{{"type", "array"}, {"items", std::move(deep)}};
    EXPECT_NE(err(deep).find("schemas nest deeper than 128"), std::string::npos);

    // $ref cycles with no way out.
    EXPECT_NE(err(json::parse(R"({"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}}})")).find("grammar: "), std::string::npos);
    EXPECT_NE(err(json::parse(R"({"$ref":"#"})")).find("grammar: no finite text completes rule '#'"), std::string::npos);
    EXPECT_EQ(err(json::parse(R"({"type":"object","properties":{"next":{"$ref":"#"}},"required":["next"]})")),
              "grammar: no finite text completes rule '#'");
    EXPECT_NE(err(json::parse(R"({"$defs":{"a":{"type":"array","items":{"$ref":"#/$defs/a"},"minItems":1}},"$ref":"#/$defs/a"})"))
                  .find("no finite text completes"),
              std::string::npos);

    // 10 MB of properties.
    std::string big = R"({"type":"object","properties":{)";
    for (int i = 0; big.size() < 10'000'000; ++i) big += (i ? "," : "") + std::string("\"property_") + std::to_string(i) + R"(":{"type":"string"})";
    big += "}}";
    EXPECT_EQ(err(json::parse(big)), "json_schema: more than 1000 properties at the root");

    // A huge enum compiles to a trie: one parse path however many values.
    json::Array values;
    for (int i = 0; i < 50000; ++i) values.push_back(json::Value("value " + std::to_string(i * 7)));
    const auto g = std::make_shared<const Grammar>(json_schema_grammar(json::Object{{"enum", json::Value(std::move(values))}}));
    EXPECT_TRUE(matches(g, R"("value 349993")"));
    EXPECT_EQ(rejected_at(g, R"("value 349994")"), 12u);
    // Values that are prefixes of each other, 900 levels of branching.
    json::Array nested;
    for (int i = 1; i <= 900; ++i) nested.push_back(json::Value(std::string(std::size_t(i), 'a')));
    const auto prefixes = std::make_shared<const Grammar>(json_schema_grammar(json::Object{{"enum", json::Value(std::move(nested))}}));
    EXPECT_TRUE(matches(prefixes, "\"" + std::string(900, 'a') + "\""));
    EXPECT_EQ(rejected_at(prefixes, "\"" + std::string(901, 'a') + "\""), 901u);
    // Sizes past the grammar's limit.
    EXPECT_NE(err(json::Object{{"const", std::string(3'000'000, 'x')}}).find("elements"), std::string::npos);
}

// --- The token mask ---

// The allowed set from the trie walk, checked against matching every token alone.
void expect_mask_is_exact(TokenConstraint& c, Matcher& m, const VocabTrie& vocab) {
    std::vector<char> allowed;
    c.allowed(allowed);
    for (std::int32_t id = 0; id < vocab.vocab_size(); ++id) {
        const bool want = vocab.ends(id) ? m.complete() : !vocab.bytes(id).empty() && m.accepts(vocab.bytes(id));
        ASSERT_EQ(bool(allowed[std::size_t(id)]), want) << "token " << id << " '" << vocab.bytes(id) << "'";
    }
}

TEST(TokenMask, TrieWalkEqualsMatchingEachToken) {
    const Tokenizer tok = Tokenizer::from_gguf(gguf::File::open(test::model_path("stories260K.gguf")));
    const auto vocab = std::make_shared<const VocabTrie>(tok);
    const auto g = schema_grammar(R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},
        "n":{"type":"array","items":{"type":"number"}},"ok":{"type":"boolean"},"note":{"type":"string"}},"required":["name"]})");
    TokenConstraint c(g, vocab);
    Matcher m(g);
    // The note's characters leave the same state again and again: masks from the cache.
    const std::string doc = R"( {"name": "Once upon", "n": [1, -2.5e3], "ok": true, "note": "aaaa\n\u00e9b"} )";
    for (std::size_t i = 0; i <= doc.size(); ++i) {
        expect_mask_is_exact(c, m, *vocab);
        if (i == doc.size()) break;
        // Advance both by one byte, through a byte token (stories260K has one for every byte).
        const std::string byte(1, doc[i]);
        std::int32_t byte_token = -1;
        for (std::int32_t id = 0; id < vocab->vocab_size(); ++id)
            if (tok.vocab().type(id) == tokenizer::TokenType::byte && vocab->bytes(id) == byte) byte_token = id;
        ASSERT_GE(byte_token, 0);
        c.accept(byte_token);
        ASSERT_TRUE(m.feed(byte));
    }
    EXPECT_TRUE(c.complete());
    EXPECT_NE(error_of([&] { c.accept(tok.encode("x", false).back()); }).find("does not continue the text"), std::string::npos);
}

TEST(TokenMask, EndTokensOnlyWhenCompleteAndMissingOnesEndCleanly) {
    // A vocabulary without end-of-generation tokens, with a control and a user-defined token.
    using tokenizer::TokenType;
    tokenizer::Vocab v({"<0x61>", "a", "aa", "b", "<ctl>", "<u>"}, {},
                       {TokenType::byte, TokenType::normal, TokenType::normal, TokenType::normal, TokenType::control, TokenType::user_defined}, {},
                       {}, tokenizer::VocabOptions{.model = tokenizer::Model::spm, .add_bos = false});
    const Tokenizer tok(std::move(v));
    const auto vocab = std::make_shared<const VocabTrie>(tok);
    Builder b;
    const auto g = std::make_shared<const Grammar>(b.build(b.seq({b.repeat(b.literal("a"), 1, 3), b.optional(b.literal("<u>"))})));
    TokenConstraint c(g, vocab);
    std::vector<float> logits(7, 0.0f);  // one past the vocabulary, as a padded output layer has
    EXPECT_EQ(c.mask(logits), 3u);       // <0x61>, a, aa
    EXPECT_EQ(logits[3], -INFINITY);
    EXPECT_EQ(logits[6], -INFINITY);
    c.accept(2);  // aa
    logits.assign(7, 0.0f);
    // <0x61>, a, and the user-defined token's text; a control token writes nothing, so never.
    EXPECT_EQ(c.mask(logits), 3u);
    EXPECT_EQ(logits[4], -INFINITY);
    EXPECT_EQ(logits[5], 0.0f);
    c.accept(5);
    EXPECT_TRUE(c.complete());
    EXPECT_FALSE(c.can_continue());
    logits.assign(7, 0.0f);
    EXPECT_EQ(c.mask(logits), 0u);  // complete: nothing but the (missing) end tokens
    // Stop tokens given by the caller end generation like the vocabulary's own.
    std::vector<char> allowed;
    const std::int32_t stop = 3;
    c.allowed(allowed, std::span(&stop, 1));
    EXPECT_EQ(allowed, (std::vector<char>{0, 0, 0, 1, 0, 0}));
}

// --- Generation under a schema ---

// A validator for the keywords the generation tests use, independent of the grammar.
bool valid(const json::Value& v, const json::Value& s, const json::Value& root) {
    if (const json::Value* r = s.find("$ref")) return valid(v, root.at("$defs").at(r->as_string().substr(8)), root);
    if (const json::Value* c = s.find("const")) return json::dump(*c) == json::dump(v);
    if (const json::Value* e = s.find("enum")) {
        for (const auto& x : e->as_array())
            if (json::dump(x) == json::dump(v)) return true;
        return false;
    }
    if (const json::Value* a = s.find("anyOf")) {
        for (const auto& x : a->as_array())
            if (valid(v, x, root)) return true;
        return false;
    }
    const std::string type = s.at("type").as_string();
    if (type == "null") return v.is_null();
    if (type == "boolean") return v.is_bool();
    if (type == "integer" || type == "number") {
        if (!v.is_number() || !std::isfinite(v.as_number())) return false;
        if (type == "integer" && v.as_number() != std::floor(v.as_number())) return false;
        return !s.find("minimum") || v.as_number() >= s.at("minimum").as_number();
    }
    if (type == "string") {
        if (!v.is_string()) return false;
        std::size_t chars = 0;
        for (const char c : v.as_string()) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        return (!s.find("maxLength") || chars <= std::size_t(s.at("maxLength").as_number())) &&
               (!s.find("minLength") || chars >= std::size_t(s.at("minLength").as_number()));
    }
    if (type == "array") {
        if (!v.is_array()) return false;
        const auto& a = v.as_array();
        if (s.find("maxItems") && a.size() > std::size_t(s.at("maxItems").as_number())) return false;
        if (s.find("minItems") && a.size() < std::size_t(s.at("minItems").as_number())) return false;
        for (const auto& x : a)
            if (!valid(x, s.at("items"), root)) return false;
        return true;
    }
    if (!v.is_object()) return false;  // object, additionalProperties false
    for (const auto& [k, x] : v.as_object()) {
        const json::Value* p = s.at("properties").find(k);
        if (!p || !valid(x, *p, root)) return false;
        for (const auto& [k2, x2] : v.as_object())
            if (&x2 != &x && k2 == k) return false;  // a key twice
    }
    if (const json::Value* req = s.find("required"))
        for (const auto& r : req->as_array())
            if (!v.find(r.as_string())) return false;
    return true;
}

const char* const kPersonSchema = R"({"type":"object","properties":{
    "name":{"type":"string","minLength":1,"maxLength":10},
    "age":{"type":"integer","minimum":0},
    "score":{"type":"number"},
    "happy":{"type":"boolean"},
    "tags":{"type":"array","items":{"enum":["a","b","big dog"]},"maxItems":3},
    "pet":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/pet"}]}},
  "required":["name","age","pet"],"additionalProperties":false,
  "$defs":{"pet":{"type":"object","properties":{"legs":{"type":"integer","minimum":0},"kind":{"enum":["cat","dog"]}},
                  "required":["kind"],"additionalProperties":false}}})";

class ConstrainedGeneration : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        lm_ = std::make_unique<LanguageModel>(LanguageModel::open(test::model_path("stories260K.gguf"), ModelOptions{.threads = 2}));
        vocab_ = std::make_shared<const VocabTrie>(lm_->tokenizer());
    }
    static void TearDownTestSuite() {
        lm_.reset();
        vocab_.reset();
    }

    GenerationResult run(const std::shared_ptr<const Grammar>& g, std::uint64_t seed, int max_tokens, float temperature = 1.5f) {
        GenerationParams p;
        p.max_tokens = max_tokens;
        p.sampling.temperature = temperature;
        p.sampling.seed = seed;
        p.constraint.emplace(g, vocab_);
        lm_->model().truncate(0);
        const auto prompt = lm_->tokenize("Tom wrote down his friend:");
        auto r = lm_->complete(prompt, p);
        // The text is exactly the tokens' bytes, as the grammar saw them.
        std::string bytes;
        for (const auto id : r.tokens) bytes += vocab_->bytes(id);
        EXPECT_EQ(r.text, bytes);
        return r;
    }

    static inline std::unique_ptr<LanguageModel> lm_;
    static inline std::shared_ptr<const VocabTrie> vocab_;
};

TEST_F(ConstrainedGeneration, EverySampleParsesAndValidates) {
    const json::Value schema = json::parse(kPersonSchema);
    const auto g = std::make_shared<const Grammar>(json_schema_grammar(schema));
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
        const auto r = run(g, seed, 480);
        ASSERT_EQ(r.finish, FinishReason::eos) << "seed " << seed << ": " << r.text;
        json::Value v;
        ASSERT_NO_THROW(v = json::parse(r.text)) << "seed " << seed << ": " << r.text;
        EXPECT_TRUE(valid(v, schema, schema)) << "seed " << seed << ": " << r.text;
    }
}

TEST_F(ConstrainedGeneration, GreedyToo) {
    const json::Value schema = json::parse(R"({"type":"object","properties":{"word":{"enum":["cat","dog","sun"]},
        "n":{"type":"integer"}},"required":["word","n"],"additionalProperties":false})");
    const auto r = run(std::make_shared<const Grammar>(json_schema_grammar(schema)), 1, 300, 0.0f);
    ASSERT_EQ(r.finish, FinishReason::eos) << r.text;
    EXPECT_TRUE(valid(json::parse(r.text), schema, schema)) << r.text;
}

TEST_F(ConstrainedGeneration, LogprobsAreTheModelsOwn) {
    const auto r = run(schema_grammar(kPersonSchema), 3, 480);
    ASSERT_EQ(r.finish, FinishReason::eos);
    // Replay the tokens unconstrained: each logprob is the log-softmax of the model's own logits.
    lm_->model().truncate(0);
    std::vector<float> logits;
    const auto replay = [&](std::span<const float> l) { logits.assign(l.begin(), l.end()); };
    replay(lm_->model().prefill(lm_->tokenize("Tom wrote down his friend:")));
    for (std::size_t i = 0; i < r.tokens.size(); ++i) {
        float max = -INFINITY, sum = 0.0f;
        for (const float l : logits) max = std::fmax(max, l);
        for (const float l : logits) sum += std::exp(l - max);
        EXPECT_NEAR(r.logprobs[i], logits[std::size_t(r.tokens[i])] - max - std::log(sum), 1e-4f) << "token " << i;
        replay(lm_->model().decode(r.tokens[i]));
    }
}

TEST_F(ConstrainedGeneration, TinyMaxTokensStopsMidValueWithLength) {
    const auto g = schema_grammar(kPersonSchema);
    const auto r = run(g, 7, 3);
    EXPECT_EQ(r.finish, FinishReason::length);
    EXPECT_EQ(r.tokens.size(), 3u);
    Matcher m(g);
    EXPECT_TRUE(m.feed(r.text)) << r.text;  // a prefix of a valid document
    EXPECT_FALSE(m.complete()) << r.text;
}

TEST_F(ConstrainedGeneration, TextNoTokenCanContinueIsAnError) {
    // Ten nested rules, but stacks may be at most 6 frames deep: the text gets stuck inside.
    Builder b;
    Expr inner = b.literal("x");
    for (int i = 0; i < 10; ++i) {
        const Expr r = b.rule("level " + std::to_string(i));
        b.define(r, b.seq({b.literal("("), inner, b.literal(")")}));
        inner = r;
    }
    const auto g = std::make_shared<const Grammar>(b.build(b.seq({inner, b.literal("!")})));
    GenerationParams p;
    p.sampling.temperature = 0.0f;
    p.constraint.emplace(g, vocab_, MatchLimits{.max_depth = 6});
    lm_->model().truncate(0);
    const std::string e = error_of([&] { lm_->complete(lm_->tokenize("Once upon a time"), p); });
    EXPECT_NE(e.find("grammar: no token of the vocabulary can continue the text"), std::string::npos) << e;
}

TEST_F(ConstrainedGeneration, ComposedGrammarOfLiteralsAndSchemas) {
    // One to three tool calls, each of one of two shapes.
    const json::Value weather = json::parse(R"({"type":"object","properties":{"name":{"const":"weather"},"arguments":{"type":"object",
        "properties":{"city":{"type":"string","maxLength":8}},"required":["city"],"additionalProperties":false}},"required":["name","arguments"],
        "additionalProperties":false})");
    const json::Value clock = json::parse(R"({"type":"object","properties":{"name":{"const":"clock"},"arguments":{"type":"object",
        "properties":{"utc":{"type":"boolean"}},"required":["utc"],"additionalProperties":false}},"required":["name","arguments"],
        "additionalProperties":false})");
    Builder b;
    JsonGrammar json(b);
    const Expr call = b.seq({b.literal("<tool_call>\n"), b.any({json.schema(weather), json.schema(clock)}), b.literal("\n</tool_call>")});
    const auto g = std::make_shared<const Grammar>(b.build(b.repeat(b.seq({call, b.optional(b.literal("\n"))}), 1, 3)));
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const auto r = run(g, seed, 480);
        ASSERT_EQ(r.finish, FinishReason::eos) << "seed " << seed << ": " << r.text;
        std::size_t pos = 0, calls = 0;
        while (pos < r.text.size()) {
            ASSERT_EQ(r.text.compare(pos, 12, "<tool_call>\n"), 0) << r.text;
            const std::size_t end = r.text.find("\n</tool_call>", pos);
            ASSERT_NE(end, std::string::npos) << r.text;
            const json::Value v = json::parse(std::string_view(r.text).substr(pos + 12, end - pos - 12));
            EXPECT_TRUE(valid(v, weather, weather) || valid(v, clock, clock)) << r.text;
            pos = end + 13;
            if (pos < r.text.size() && r.text[pos] == '\n') ++pos;
            ++calls;
        }
        EXPECT_GE(calls, 1u);
        EXPECT_LE(calls, 3u);
    }
}

}  // namespace
}  // namespace forge::grammar
