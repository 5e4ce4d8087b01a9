// The JSON reader treats its input as hostile: exact grammar, UTF-8 and escapes, bounded depth, errors
// naming the byte offset. The writer's output parses back to the same value.
#include <gtest/gtest.h>

#include <string>

#include "forge/json/json.hpp"

namespace forge::json {
namespace {

TEST(Json, ParsesEveryValueKind) {
    const Value v = parse(R"( {"a": [1, -2.5e3, true, false, null], "b": {"c": "x\ny\u00e9\ud83d\ude00"}, "e": {}} )");
    const auto& a = v.at("a").as_array();
    ASSERT_EQ(a.size(), 5u);
    EXPECT_EQ(a[0].as_number(), 1);
    EXPECT_EQ(a[1].as_number(), -2500);
    EXPECT_TRUE(a[2].as_bool());
    EXPECT_FALSE(a[3].as_bool());
    EXPECT_TRUE(a[4].is_null());
    EXPECT_EQ(v.at("b").at("c").as_string(), "x\ny\xc3\xa9\xf0\x9f\x98\x80");
    EXPECT_TRUE(v.at("e").as_object().empty());
    EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, RoundTripsThroughTheWriter) {
    const std::string text = R"({"s":"q\"\\\t\u0001","n":[0,1.5,-3,1e+20,0.1],"o":{"k":[]},"t":true,"z":null})";
    const Value v = parse(text);
    const Value again = parse(dump(v));
    EXPECT_EQ(dump(again), dump(v));
    EXPECT_EQ(again.at("s").as_string(), "q\"\\\t\x01");
    EXPECT_FLOAT_EQ(float(again.at("n").as_array()[4].as_number()), 0.1f);
}

TEST(Json, WriterKeepsFloatPrecisionAndMapsNonFiniteToNull) {
    EXPECT_EQ(dump(Value(0.1f)), "0.100000001");
    EXPECT_EQ(float(parse(dump(Value(3.14159274f))).as_number()), 3.14159274f);
    EXPECT_EQ(dump(Value(1.0 / 0.0)), "null");
    EXPECT_EQ(dump(Value(42)), "42");
}

void expect_error(const std::string& text, const std::string& fragment) {
    try {
        parse(text);
        FAIL() << "accepted: " << text;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << text << " -> " << e.what();
    }
}

TEST(Json, RejectsMalformedInputWithTheOffset) {
    expect_error("", "at byte 0");
    expect_error("{", "at byte 1");
    expect_error("[1,]", "at byte 3");
    expect_error("{\"a\" 1}", "expected ':'");
    expect_error("{a:1}", "expected a string key");
    expect_error("[1 2]", "expected ',' or ']'");
    expect_error("01", "leading zeros");
    expect_error("1.", "digits after '.'");
    expect_error("1e", "exponent");
    expect_error("-", "expected a value");
    expect_error("tru", "unexpected character");
    expect_error("\"abc", "unterminated string");
    expect_error("\"a\x01\"", "control character");
    expect_error("\"\\x\"", "unknown escape");
    expect_error("\"\\u12zz\"", "bad hex digit");
    expect_error("\"\\u12\"", "truncated \\u escape");
    expect_error("\"\\ud800\"", "unpaired surrogate");
    expect_error("\"\\udc00\"", "unpaired surrogate");
    expect_error("\"\xff\"", "invalid UTF-8");
    expect_error("\"\xc0\xaf\"", "invalid UTF-8");  // overlong '/'
    expect_error("\"\xed\xa0\x80\"", "invalid UTF-8");  // encoded surrogate
    expect_error("\"\xe2\x82\"", "UTF-8");
    expect_error("{} x", "trailing");
}

TEST(Json, BoundsNestingDepth) {
    EXPECT_NO_THROW(parse(std::string(64, '[') + std::string(64, ']')));
    expect_error(std::string(100000, '['), "nesting deeper than 64");
}

TEST(Json, TypeErrorsNameWhatWasFound) {
    const Value v = parse(R"({"n": "x"})");
    try {
        (void)v.at("n").as_number();
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "expected a number, found string");
    }
    EXPECT_THROW((void)v.at("absent"), Error);
}

}  // namespace
}  // namespace forge::json
