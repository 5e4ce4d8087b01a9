// forge's Jinja engine: the language (statements, operators, filters, tests, whitespace control,
// undefined), errors naming line:column, every sandbox limit failing fast, the origin marks that keep
// message text from becoming special tokens, and real chat templates rendered exactly as llama.cpp's
// engine renders them (tests/data/chat-templates, the shared test data's chat-templates).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "forge/chat/jinja.hpp"
#include "forge/chat/template.hpp"
#include "testdata.hpp"

namespace forge::chat::jinja {
namespace {

std::string render(std::string_view tmpl, std::string_view context = "{}") { return Template(tmpl).render(json::parse(context)); }

// The message of the forge::Error that rendering (or parsing) `tmpl` throws.
std::string error_of(std::string_view tmpl, std::string_view context = "{}") {
    try {
        render(tmpl, context);
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

TEST(Jinja, TextOutputAndComments) {
    EXPECT_EQ(render("Hello {{ name }}!{# a comment #}", R"({"name": "world"})"), "Hello world!");
    EXPECT_EQ(render(""), "");
    EXPECT_EQ(render("a\n"), "a") << "one trailing newline goes";
    EXPECT_EQ(render("a\n\n"), "a\n");
    EXPECT_EQ(render("a\r\nb"), "a\nb");
    EXPECT_EQ(render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
}

TEST(Jinja, WhitespaceControlAsHuggingFaceConfiguresIt) {
    // trim_blocks: the newline after a block tag goes; lstrip_blocks: the indent before one goes.
    EXPECT_EQ(render("{% if true %}\n  yes\n  {% endif %}\nend"), "  yes\nend");
    EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
    EXPECT_EQ(render("a  {{- 'x' -}}  b"), "axb");
    EXPECT_EQ(render("{{ 'x' }}\ny"), "x\ny") << "expressions keep the newline after them";
    EXPECT_EQ(render("a {# c #}\nb"), "a b");
    EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x") << "{%+ keeps the indent";
    EXPECT_EQ(render("x {% if true %}y{% endif %}"), "x y") << "only a line's leading indent is stripped";
}

TEST(Jinja, IfElifElse) {
    const char* t = "{% if n > 2 %}big{% elif n == 2 %}two{% else %}small{% endif %}";
    EXPECT_EQ(render(t, R"({"n": 3})"), "big");
    EXPECT_EQ(render(t, R"({"n": 2})"), "two");
    EXPECT_EQ(render(t, R"({"n": 1})"), "small");
}

TEST(Jinja, ForLoopVariablesElseAndFilter) {
    EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}"
                     "{{ loop.last }}{{ loop.length }}{{ x }};{% endfor %}",
                     R"({"xs": ["a", "b"]})"),
              "1021TrueFalse2a;2110FalseTrue2b;");
    EXPECT_EQ(render("{% for x in xs %}{{ loop.previtem }}>{{ x }}>{{ loop.nextitem }} {% endfor %}", R"({"xs": [1, 2, 3]})"), ">1>2 1>2>3 2>3> ");
    EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
    EXPECT_EQ(render("{% for x in range(10) if x is odd %}{{ x }}{{ loop.length }} {% endfor %}"), "15 35 55 75 95 ");
    EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", R"({"d": {"b": 1, "a": 2}})"), "b=1,a=2,") << "insertion order";
    EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", R"({"d": {"x": 1, "y": 2}})"), "xy");
    EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}"), "3 7 ");
    EXPECT_EQ(render("{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}"), "02");
    EXPECT_EQ(render("{% for x in undefined_thing %}x{% endfor %}"), "") << "undefined iterates as empty";
}

TEST(Jinja, SetScopingAndNamespace) {
    EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1") << "a loop's set does not leak";
    EXPECT_EQ(render("{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}"), "4");
    EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
    EXPECT_EQ(render("{% set t = 1, 2 %}{{ t }}"), "[1, 2]");
    EXPECT_EQ(render("{% set block %}  x{{ 1 }} {% endset %}[{{ block }}]"), "[  x1 ]");
    EXPECT_EQ(render("{% set block | trim | upper %}  x {% endset %}[{{ block }}]"), "[X]");
    EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5") << "if shares its scope";
    EXPECT_TRUE(contains(error_of("{% set s = 'a' %}{% set s.x = 1 %}"), "not a namespace"));
}

TEST(Jinja, MacrosWithDefaultsAndKeywords) {
    const char* m = "{% macro greet(name, greeting='Hi', punct='!') %}{{ greeting }} {{ name }}{{ punct }}{% endmacro %}";
    EXPECT_EQ(render(std::string(m) + "{{ greet('Ann') }}|{{ greet('Bo', punct='?') }}|{{ greet(greeting='Yo', name='Cy') }}"), "Hi Ann!|Hi Bo?|Yo Cy!");
    EXPECT_EQ(render("{% set g = 'outer' %}{% macro f() %}{{ g }}{% endmacro %}{{ f() }}"), "outer");
    EXPECT_TRUE(contains(error_of(std::string(m) + "{{ greet('a', 'b', 'c', 'd') }}"), "takes 3 arguments"));
    EXPECT_TRUE(contains(error_of(std::string(m) + "{{ greet(nam='a') }}"), "no parameter 'nam'"));
}

TEST(Jinja, FilterAndGenerationBlocks) {
    EXPECT_EQ(render("{% filter upper %}ab{{ 'c' }}{% endfilter %}"), "ABC");
    EXPECT_EQ(render("{% generation %}reply{% endgeneration %}"), "reply");
}

TEST(Jinja, OperatorsWithPythonSemantics) {
    EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }}"),
              "3 -4 1 2 1024 3.5 7 9");
    EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }} {{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ [1] + [2] }}"), "a1None abcd ababab [1, 2]");
    EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}"), "True True True True");
    EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }}"), "True False True True True");
    EXPECT_EQ(render("{{ not true or true }} {{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' or [] }}"), "True x y []");
    EXPECT_EQ(render("{{ 'y' if 1 > 0 else 'n' }}{{ 'y' if false }}"), "y");
    EXPECT_EQ(render("{{ -3 }} {{ +3 }} {{ 1e3 }} {{ 3 }} {{ 3.0 }} {{ 0.5 }} {{ 2.25 * 2 }}"), "-3 3 1000.0 3 3.0 0.5 4.5");
    EXPECT_TRUE(contains(error_of("{{ 1 // 0 }}"), "division by zero"));
    EXPECT_TRUE(contains(error_of("{{ 9223372036854775807 + 1 }}"), "integer overflow"));
    EXPECT_TRUE(contains(error_of("{{ 'a' - 1 }}"), "unsupported operand"));
}

TEST(Jinja, LiteralsSlicingAndAccess) {
    EXPECT_EQ(render("{{ [1, 2, 3][::-1] }} {{ [1, 2, 3][1:] }} {{ 'hello'[1:3] }} {{ 'abc'[-1] }} {{ [1, 2, 3, 4][::2] }}"), "[3, 2, 1] [2, 3] el c [1, 3]");
    EXPECT_EQ(render("{{ {'a': 1, 'b': [true, none]} }} {{ ('x', 'y') }} {{ \"it's\" }} {{ ['it\\'s'] }}"),
              "{'a': 1, 'b': [True, None]} ['x', 'y'] it's [\"it's\"]");
    EXPECT_EQ(render("{{ m.role }}{{ m['role'] }}{{ xs[1] }}{{ xs.0 }}{{ xs[-1] }}", R"({"m": {"role": "user"}, "xs": [5, 6]})"), "useruser656");
    EXPECT_EQ(render("{{ 'é'|length }} {{ 'aé'[1] }}"), "1 é") << "strings index by character";
}

TEST(Jinja, UndefinedSemantics) {
    EXPECT_EQ(render("[{{ missing }}]"), "[]");
    EXPECT_EQ(render("{{ missing is defined }} {{ missing is undefined }} {{ m.nokey is defined }} {{ none.x is defined }}", R"({"m": {}})"),
              "False True False False");
    EXPECT_EQ(render("{{ missing | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ missing | length }}"), "d  d 0");
    EXPECT_EQ(render("{{ missing == missing }} {{ not missing }}"), "True True");
    EXPECT_TRUE(contains(error_of("{{ missing.attr }}"), "'missing' is undefined"));
    EXPECT_TRUE(contains(error_of("{{ missing['k'] }}"), "'missing' is undefined"));
    EXPECT_TRUE(contains(error_of("{{ missing() }}"), "'missing' is undefined"));
}

TEST(Jinja, Filters) {
    EXPECT_EQ(render("{{ '  a b  ' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 'hello wORLD' | title }}|{{ 'hELLO' | capitalize }}"),
              "a b|a|AB|ab|Hello World|Hello");
    EXPECT_EQ(render("{{ 'aaa' | replace('a', 'b', 2) }}|{{ [1, 2] | length }}|{{ 'abc' | count }}|{{ [1, 2] | first }}{{ [1, 2] | last }}"), "bba|2|3|12");
    EXPECT_EQ(render("{{ [1, 2, 3] | join(', ') }}|{{ xs | join(attribute='n') }}", R"({"xs": [{"n": "a"}, {"n": "b"}]})"), "1, 2, 3|ab");
    EXPECT_EQ(render("{{ 'ab' | list }}|{{ {'a': 1} | items | list }}|{{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}|{{ [1, 2] | reverse | list }}"),
              "['a', 'b']|[['a', 1]]|[1, 2, 3]|[3, 2, 1]|[2, 1]");
    EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | dictsort }}|{{ [1, 2, 1, 3] | unique | list }}|{{ [1, 2, 3, 4, 5] | batch(2) | list }}"),
              "[['a', 2], ['b', 1]]|[1, 2, 3]|[[1, 2], [3, 4], [5]]");
    EXPECT_EQ(render("{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ '2.5' | float }} {{ 3 | float }} {{ 3 | string }} {{ -3 | abs }}"),
              "42 4 0 7 2.5 3.0 3 3");
    EXPECT_EQ(render("{{ [1, 5, 3] | max }} {{ [1, 5, 3] | min }} {{ [1, 2] | sum }} {{ 2.567 | round(2) }} {{ 'a b  c' | wordcount }}"), "5 1 3 2.57 3");
    EXPECT_EQ(render("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
    EXPECT_EQ(render("{{ '<a&b>' | e }} {{ '<a>' | safe }}"), "&lt;a&amp;b&gt; <a>");
    const char* people = R"({"ps": [{"n": "a", "ok": true, "age": 3}, {"n": "b", "ok": false, "age": 5}, {"n": "c", "age": 4}]})";
    EXPECT_EQ(render("{{ ps | selectattr('ok') | map(attribute='n') | list }}", people), "['a']");
    EXPECT_EQ(render("{{ ps | rejectattr('ok') | map(attribute='n') | join }}", people), "bc");
    EXPECT_EQ(render("{{ ps | selectattr('n', 'equalto', 'b') | map(attribute='age') | first }}", people), "5");
    EXPECT_EQ(render("{{ ps | selectattr('ok', 'defined') | list | length }}", people), "2");
    EXPECT_EQ(render("{{ ps | sort(attribute='age') | map(attribute='n') | join }}", people), "acb");
    EXPECT_EQ(render("{{ [1, 2, 3, 4] | select('even') | list }} {{ [1, 2, 3] | reject('odd') | list }} {{ ['a', 'b'] | map('upper') | list }}"),
              "[2, 4] [2] ['A', 'B']");
    EXPECT_EQ(render("{{ '{\"a\": [1, 2.5]}' | from_json }}"), "{'a': [1, 2.5]}");
    EXPECT_TRUE(contains(error_of("{{ 1 | nosuchfilter }}"), "unknown filter 'nosuchfilter'"));
}

TEST(Jinja, ToJsonAsHuggingFaceCallsIt) {
    const char* ctx = R"({"t": {"name": "f", "p": {"a": [1, 2.5, true, null]}, "s": "é\"\n"}})";
    EXPECT_EQ(render("{{ t | tojson }}", ctx), R"({"name": "f", "p": {"a": [1, 2.5, true, null]}, "s": "é\"\n"})");
    EXPECT_EQ(render("{{ t.p | tojson(indent=2) }}", ctx), "{\n  \"a\": [\n    1,\n    2.5,\n    true,\n    null\n  ]\n}");
    EXPECT_EQ(render("{{ t.p | tojson(separators=(',', ':')) }}", ctx), R"({"a":[1,2.5,true,null]})");
    EXPECT_EQ(render("{{ 'é' | tojson(ensure_ascii=true) }} {{ '😀' | tojson(ensure_ascii=true) }}"), R"("\u00e9" "\ud83d\ude00")");
    EXPECT_EQ(render("{{ {'b': 1, 'a': {'d': 2, 'c': 3}} | tojson(sort_keys=true) }}"), R"({"a": {"c": 3, "d": 2}, "b": 1})");
    EXPECT_EQ(render("{{ 3 | tojson }} {{ 0.1 | tojson }} {{ x | tojson }}", R"({"x": 1e20})"), "3 0.1 1e+20");
}

TEST(Jinja, Tests) {
    EXPECT_EQ(render("{{ none is none }}{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}"
                     "{{ 'a' is sequence }}{{ true is boolean }}{{ true is true }}{{ false is false }}{{ 3 is odd }}{{ 4 is even }}"),
              "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
    EXPECT_EQ(render("{{ 1 is string }}{{ [] is mapping }}{{ true is integer }}{{ 1 is true }}{{ 'a' is not string }}"), "FalseFalseFalseFalseFalse");
    EXPECT_EQ(render("{{ 2 is equalto 2 }}{{ 2 is eq(3) }}{{ 'a' is in ['a'] }}{{ 9 is divisibleby 3 }}{{ 'ab' is lower }}{{ 3 is gt 2 }}"),
              "TrueFalseTrueTrueTrueTrue");
    EXPECT_TRUE(contains(error_of("{{ 1 is nosuchtest }}"), "unknown test 'nosuchtest'"));
}

TEST(Jinja, MethodsOfStringsDictsAndLists) {
    EXPECT_EQ(render("{{ ' a '.strip() }}|{{ 'xax'.lstrip('x') }}|{{ 'xax'.rstrip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.rsplit(',', 1) }}"),
              "a|ax|xa|['a', 'b', '', 'c']|['a', 'b']|['a,b', 'c']");
    EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}{{ 'abcb'.find('b') }}{{ 'abc'.find('z') }}"),
              "TrueTrueABab1-1");
    EXPECT_EQ(render("{{ 'a-b'.replace('-', '+') }} {{ '{} and {name} {{x}}'.format(1, name='n') }} {{ 'ab cd'.title() }} {{ ', '.join(['a', 'b']) }}"),
              "a+b 1 and n {x} Ab Cd a, b");
    EXPECT_EQ(render("{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 0) }}{{ d.keys() | list }}{{ d.values() | list }}", R"({"d": {"a": 1}})"), "1None0['a'][1]");
    EXPECT_EQ(render("{% set l = [1] %}{% do l.append(2) %}{{ l }}{{ l.pop() }}{{ l }}{% set d = {} %}{% do d.update({'k': 1}) %}{{ d }}"), "[1, 2]2[1]{'k': 1}");
    EXPECT_EQ(render("{% set ns = namespace(items=[]) %}{% for i in range(3) %}{% set _ = ns.items.append(i) %}{% endfor %}{{ ns.items }}"), "[0, 1, 2]");
}

TEST(Jinja, Globals) {
    EXPECT_EQ(render("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }} {{ dict(a=1) }}"), "[0, 1, 2] [1, 3, 5] [3, 2, 1] {'a': 1}");
    EXPECT_EQ(render("{{ strftime_now('%Y') | length }}"), "4");
    const std::string err = error_of("line one\n{{ raise_exception('Roles must alternate') }}");
    EXPECT_TRUE(contains(err, "Roles must alternate")) << err;
    EXPECT_TRUE(contains(err, "at 2:4")) << err;
}

TEST(Jinja, ErrorsNameLineAndColumn) {
    EXPECT_TRUE(contains(error_of("ok\n{% if x %}\n"), "missing '{% endif %}'")) << error_of("ok\n{% if x %}\n");
    EXPECT_TRUE(contains(error_of("a\n  {{ 1 + }}"), "expected an expression, got '}}' at 2:10")) << error_of("a\n  {{ 1 + }}");
    EXPECT_TRUE(contains(error_of("{% endfor %}"), "at 1:4")) << error_of("{% endfor %}");
    EXPECT_TRUE(contains(error_of("{{ 'abc }}"), "string not closed at 1:4"));
    EXPECT_TRUE(contains(error_of("{% for %}"), "expected a name"));
    EXPECT_TRUE(contains(error_of("{% break %}"), "outside a loop"));
    EXPECT_TRUE(contains(error_of("{{ x $ y }}"), "unexpected character '$' at 1:6"));
    EXPECT_TRUE(contains(error_of("{% include 'x' %}"), "unknown or misplaced statement 'include'"));
    EXPECT_TRUE(contains(error_of("\n\n  {{ [1][0].x.y }}"), "at 3:")) << error_of("\n\n  {{ [1][0].x.y }}");
}

// Each limit is hit by a template made to hit it and fails with an error naming it. (How fast is not
// asserted: a timed test fails on a loaded machine or under the sanitizers; the limits bound the work.)
void expect_limit(std::string_view tmpl, std::string_view limit) {
    const std::string err = error_of(tmpl);
    EXPECT_TRUE(contains(err, limit)) << err << "\n" << tmpl.substr(0, 80);
}

TEST(Jinja, SandboxLimitsFailCleanly) {
    expect_limit("{% for i in range(10**9) %}{% endfor %}", "kMaxLoopIterations");
    expect_limit("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(10) %}{% endfor %}{% endfor %}{% endfor %}", "kMaxLoopIterations");
    expect_limit("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macro calls deeper than its limit");
    std::string ifs;
    for (int i = 0; i < 10000; ++i) ifs += "{% if true %}";
    expect_limit(ifs, "kMaxParseDepth");
    expect_limit("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "kMaxParseDepth");
    std::string chain = "{{ 1";
    for (int i = 0; i < 300000; ++i) chain += "+1";
    expect_limit(chain + " }}", "kMaxParseDepth");
    std::string filters = "{{ 'x'";
    for (int i = 0; i < 100000; ++i) filters += "|trim";
    expect_limit(filters + " }}", "kMaxParseDepth");
    expect_limit("{{ x" + [] {
        std::string s;
        for (int i = 0; i < 100000; ++i) s += ".a[0]()";
        return s;
    }() + " }}",
                 "kMaxParseDepth");
    expect_limit("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "kMaxOutputBytes");
    expect_limit("{{ 'x' * 1000000000 }}", "kMaxOutputBytes");
    expect_limit("{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}",
                 "kMaxOutputBytes");
    expect_limit("{% set s = 'x' * 4000000 %}{% for i in range(1000) %}{% set t = s.upper() %}{% endfor %}", "kMaxStringWork");
    expect_limit("{% set l = [] %}{% do l.append(l) %}{{ l }}", "kMaxValueDepth");
    // Work on large values counts too: comparing, copying for a loop that breaks at once, printing.
    expect_limit("{% set big = range(400000) | list %}{% for i in range(400000) %}{% if big == big %}{% endif %}{% endfor %}", "kMaxLoopIterations");
    expect_limit("{% set big = range(300000) | list %}{% for i in range(300000) %}{% for x in big %}{% break %}{% endfor %}{% endfor %}",
                 "kMaxLoopIterations");
    expect_limit("{% set big = range(300000) | list %}{{ [big] * 1000 }}", "kMax");
    expect_limit(std::string(kMaxTemplateBytes + 1, 'a'), "over the limit");
    // Macros nested in blocks nested in macros: bounded all together.
    expect_limit("{% macro f(n) %}" + [] {
        std::string s;
        for (int i = 0; i < 150; ++i) s += "{% if true %}";
        s += "{{ f(n + 1) }}";
        for (int i = 0; i < 150; ++i) s += "{% endif %}";
        return s;
    }() + "{% endmacro %}{{ f(0) }}",
                 "kMaxRenderDepth");
}

TEST(Jinja, ContextTextStaysMarkedThroughOperations) {
    const Template t("<|im_start|>{{ m.role }}\n{{ m.content | trim }}{{ '<|im_end|>' }}{{ ('<|' ~ 'x|>') }}{{ m.content.upper() }}{{ [m.content] | join('<|sep|>') }}");
    const auto parts = t.render_parts(json::parse(R"({"m": {"role": "user", "content": " <|im_end|> "}})"));
    std::vector<std::pair<std::string, bool>> got;
    for (const auto& p : parts) got.emplace_back(p.text, p.from_template);
    const std::vector<std::pair<std::string, bool>> want = {
        {"<|im_start|>", true}, {"user", false}, {"\n", true}, {"<|im_end|>", false}, {"<|im_end|><|x|>", true}, {" <|IM_END|>  <|im_end|> ", false}};
    EXPECT_EQ(got, want);
    // Concatenation keeps each piece's origin; trusted values count as the template's.
    const Template c("{{ bos_token + m }}{{ '[' + m + ']' }}");
    const auto cp = c.render_parts(json::parse(R"({"m": "x"})"), json::parse(R"({"bos_token": "<s>"})"));
    ASSERT_EQ(cp.size(), 5u);
    EXPECT_EQ(cp[0].text, "<s>");
    EXPECT_TRUE(cp[0].from_template);
    EXPECT_FALSE(cp[1].from_template);
    EXPECT_EQ(cp[2].text, "[");
    EXPECT_FALSE(cp[3].from_template);
    // Dict keys and tojson of context values are data too.
    const auto kp = Template("{% for k in d %}{{ k }}{% endfor %}{{ d | tojson }}").render_parts(json::parse(R"({"d": {"<k>": 1}})"));
    for (const auto& p : kp) EXPECT_FALSE(p.from_template) << p.text;
}

// Templates that print today's date (strftime_now, datetime) render it in the forms "05 Dec 2026",
// "Dec 05 2026", "December 05, 2026" and "2026-12-05"; the references were rendered on another day.
std::string mask_dates(const std::string& s) {
    static const std::regex named(R"((\d{1,2} )?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*( \d{1,2})?,? \d{4})");
    static const std::regex iso(R"(\b\d{4}-\d{2}-\d{2}\b)");
    return std::regex_replace(std::regex_replace(s, named, "<DATE>"), iso, "<DATE>");
}

TEST(Jinja, ReferenceDatesAreMaskedInEveryFormTemplatesPrint) {
    for (const auto& [a, b] : {std::pair{"Today is Dec 05 2026.", "Today is Dec 04 2026."}, {"Date: 5 Dec 2026\n", "Date: 04 Dec 2026\n"},
                               {"Today's Date: December 05, 2026.", "Today's Date: November 30, 2026."}, {"on 2026-12-05 at", "on 2026-12-04 at"}})
        EXPECT_EQ(mask_dates(a), mask_dates(b)) << a;
    EXPECT_NE(mask_dates("Today is Dec 05 2026."), mask_dates("Today was Dec 05 2026."));
}

std::string read(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The three conversations the references render (tokens.txt in either folder says the same).
std::vector<chat::Message> conversation(int n) {
    if (n == 1) return {{"user", "Hi"}};
    if (n == 2) return {{"system", "You are terse."}, {"user", "What is 2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}};
    return {{"user", "What is the weather in Paris?"}};
}

chat::RenderOptions options(int n, const std::string& bos, const std::string& eos) {
    chat::RenderOptions opt;
    opt.enable_thinking = false;
    opt.bos_token = bos;
    opt.eos_token = eos;
    if (n == 3)
        opt.tools.push_back(json::parse(R"({"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})"));
    return opt;
}

struct Reference {
    std::string name;
    int conv;
    std::filesystem::path dir;
};

// BOS and EOS a template was rendered with: tokens.txt, else "<s>" and "</s>".
std::pair<std::string, std::string> tokens_for(const std::filesystem::path& dir, const std::string& name) {
    std::ifstream f(dir / "tokens.txt");
    for (std::string line; std::getline(f, line);) {
        std::istringstream ls(line);
        std::string n, bos, eos;
        if (ls >> n >> bos >> eos && n == name) return {bos == "-" ? "" : bos, eos == "-" ? "" : eos};
    }
    return {"<s>", "</s>"};
}

void check_reference(const Reference& r) {
    const std::string tmpl = read(r.dir / (r.name + ".jinja"));
    const auto [bos, eos] = tokens_for(r.dir, r.name);
    const std::filesystem::path base = r.dir / (r.name + ".conv" + std::to_string(r.conv));
    const auto messages = conversation(r.conv);
    if (std::filesystem::exists(base.string() + ".error")) {
        EXPECT_THROW(chat::Template(tmpl).render(messages, options(r.conv, bos, eos)), Error) << "llama.cpp: " << read(base.string() + ".error");
        return;
    }
    const std::string want = read(base.string() + ".txt");
    std::string got;
    try {
        got = chat::Template(tmpl).render(messages, options(r.conv, bos, eos));
    } catch (const Error& e) {
        FAIL() << e.what();
    }
    EXPECT_EQ(mask_dates(got), mask_dates(want));
}

std::vector<Reference> references(const std::filesystem::path& dir) {
    std::vector<Reference> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().extension() == ".jinja")
            for (int c = 1; c <= 3; ++c) out.push_back({e.path().stem().string(), c, dir});
    std::sort(out.begin(), out.end(), [](const Reference& a, const Reference& b) { return std::tie(a.name, a.conv) < std::tie(b.name, b.conv); });
    return out;
}

void PrintTo(const Reference& r, std::ostream* os) { *os << r.name << " conversation " << r.conv; }

std::string test_name(const testing::TestParamInfo<Reference>& info) {
    std::string n = info.param.name + "_conv" + std::to_string(info.param.conv);
    for (char& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return n;
}

class SharedTemplates : public testing::TestWithParam<Reference> {};
TEST_P(SharedTemplates, RenderAsLlamaCpp) { check_reference(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Jinja, SharedTemplates, testing::ValuesIn(references(test::testdata("chat-templates"))), test_name);

class LlamaCppTemplates : public testing::TestWithParam<Reference> {};
TEST_P(LlamaCppTemplates, RenderAsLlamaCpp) { check_reference(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Jinja, LlamaCppTemplates, testing::ValuesIn(references(FORGE_SOURCE_DIR "/tests/data/chat-templates")), test_name);

}  // namespace
}  // namespace forge::chat::jinja
