#pragma once
// A recursive-descent parser for the Jinja subset chat templates use, with Jinja's precedence (lowest
// first): `x if c else y`, `or`, `and`, `not`, comparisons and `in` (chained), `+ -`, `~`, `* / // %`,
// `**`, unary `- +`, then postfix `.a [i] [a:b:c] (args)`, `| filter` and `is test`. Nesting, of blocks and
// of sub-expressions, is bounded by kMaxParseDepth.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/chat/jinja/ast.hpp"
#include "forge/chat/jinja/lexer.hpp"

namespace forge::chat::jinja {

class Parser {
public:
    Parser(std::string_view src, std::vector<Token> tokens) : src_(src), t_(std::move(tokens)) {}

    Body parse_template() { return parse_body({}); }

private:
    [[noreturn]] void fail(const std::string& what, std::size_t at) const { throw Error("jinja: " + what + " at " + where(src_, at)); }

    const Token& peek(std::size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
    const Token& next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
    bool at_op(std::string_view op) const { return peek().kind == Token::op && peek().text == op; }
    bool at_name(std::string_view n) const { return peek().kind == Token::name && peek().text == n; }
    bool eat_op(std::string_view op) { return at_op(op) ? (++i_, true) : false; }
    bool eat_name(std::string_view n) { return at_name(n) ? (++i_, true) : false; }
    void expect_op(std::string_view op) {
        if (!eat_op(op)) fail("expected '" + std::string(op) + "', got " + describe(peek()), peek().offset);
    }
    void expect(Token::Kind k, const char* what) {
        if (peek().kind != k) fail(std::string("expected ") + what + ", got " + describe(peek()), peek().offset);
        ++i_;
    }
    std::string expect_identifier() {
        if (peek().kind != Token::name) fail("expected a name, got " + describe(peek()), peek().offset);
        return next().text;
    }
    static std::string describe(const Token& t) {
        switch (t.kind) {
            case Token::eof: return "the end of the template";
            case Token::block_end: return "'%}'";
            case Token::var_end: return "'}}'";
            case Token::data: return "text";
            case Token::string: return "a string";
            default: return "'" + t.text + "'";
        }
    }

    // Nesting depth, of blocks and of expressions, for hostile templates.
    struct Depth {
        Depth(Parser& p, std::size_t at) : p(p) {
            if (++p.depth_ > kMaxParseDepth) p.fail("nesting deeper than kMaxParseDepth (" + std::to_string(kMaxParseDepth) + ")", at);
        }
        ~Depth() { --p.depth_; }
        Parser& p;
    };

    static ExprPtr node(Expr::Kind k, std::size_t at) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->offset = at;
        return e;
    }
    // Every operand joins its expression here, which keeps the tree's height: chains such as 1+1+...+1
    // or x|f|f|...|f are built by loops, not recursion, yet the interpreter evaluates (and the tree
    // frees) them recursively.
    void add(Expr& parent, ExprPtr child) {
        if (child) {
            parent.height = std::max(parent.height, child->height + 1);
            if (parent.height > kMaxParseDepth)
                fail("expression nests deeper than kMaxParseDepth (" + std::to_string(kMaxParseDepth) + ")", child->offset);
        }
        parent.args.push_back(std::move(child));
    }

    static std::unique_ptr<Stmt> stmt(Stmt::Kind k, std::size_t at) {
        auto s = std::make_unique<Stmt>();
        s->kind = k;
        s->offset = at;
        return s;
    }

    // Statements until one of `ends` opens a block (left unconsumed, after its `{%`).
    Body parse_body(std::vector<std::string_view> ends) {
        Depth d(*this, peek().offset);
        Body body;
        for (;;) {
            const Token& t = peek();
            if (t.kind == Token::eof) {
                if (!ends.empty()) fail("missing '{% " + std::string(ends.back()) + " %}'", t.offset);
                return body;
            }
            if (t.kind == Token::data) {
                auto s = stmt(Stmt::data, t.offset);
                s->text = next().text;
                body.push_back(std::move(s));
            } else if (t.kind == Token::var_begin) {
                ++i_;
                auto s = stmt(Stmt::output, t.offset);
                s->expr = parse_expression();
                expect(Token::var_end, "'}}'");
                body.push_back(std::move(s));
            } else {
                const Token& kw = peek(1);
                if (kw.kind != Token::name) fail("expected a statement name after '{%'", kw.offset);
                for (const auto e : ends)
                    if (kw.text == e) return body;
                i_ += 2;
                body.push_back(parse_statement(kw));
            }
        }
    }

    // The end of a block's tag: `%}`.
    void end_tag() { expect(Token::block_end, "'%}'"); }

    // `{% name %}` closing a block.
    void end_block(std::string_view name) {
        expect(Token::block_begin, "'{%'");
        if (!eat_name(name)) fail("expected '" + std::string(name) + "'", peek().offset);
        end_tag();
    }

    // The block keyword that stopped parse_body, consumed with its `{%`.
    std::string take_block_keyword() {
        i_ += 1;
        return next().text;
    }

    std::unique_ptr<Stmt> parse_statement(const Token& kw) {
        const std::string& k = kw.text;
        const std::size_t at = kw.offset;
        if (k == "if") return parse_if(at);
        if (k == "for") return parse_for(at);
        if (k == "set") return parse_set(at);
        if (k == "macro") return parse_macro(at);
        if (k == "filter") {
            auto s = stmt(Stmt::filter_block, at);
            s->expr = parse_filter_block_chain();
            end_tag();
            s->bodies.push_back(parse_body({"endfilter"}));
            end_block("endfilter");
            return s;
        }
        if (k == "generation") {  // marks the assistant's text for training masks; renders as its body
            end_tag();
            auto s = stmt(Stmt::if_, at);
            s->exprs.push_back(node(Expr::literal, at));
            s->exprs.back()->value = true;
            s->bodies.push_back(parse_body({"endgeneration"}));
            end_block("endgeneration");
            return s;
        }
        if (k == "break" || k == "continue") {
            if (loops_ == 0) fail("'" + k + "' outside a loop", at);
            end_tag();
            return stmt(k == "break" ? Stmt::break_ : Stmt::continue_, at);
        }
        if (k == "do") {
            auto s = stmt(Stmt::do_, at);
            s->expr = parse_expression();
            end_tag();
            return s;
        }
        fail("unknown or misplaced statement '" + k + "'", at);
    }

    std::unique_ptr<Stmt> parse_if(std::size_t at) {
        auto s = stmt(Stmt::if_, at);
        s->exprs.push_back(parse_expression());
        end_tag();
        for (;;) {
            s->bodies.push_back(parse_body({"elif", "else", "endif"}));
            const std::string k = take_block_keyword();
            if (k == "elif") {
                s->exprs.push_back(parse_expression());
                end_tag();
            } else if (k == "else") {
                end_tag();
                s->bodies.push_back(parse_body({"endif"}));
                end_block("endif");
                return s;
            } else {
                end_tag();
                return s;
            }
        }
    }

    std::vector<std::string> parse_targets() {
        std::vector<std::string> names;
        const bool paren = eat_op("(");
        do names.push_back(expect_identifier());
        while (eat_op(","));
        if (paren) expect_op(")");
        return names;
    }

    std::unique_ptr<Stmt> parse_for(std::size_t at) {
        auto s = stmt(Stmt::for_, at);
        s->names = parse_targets();
        if (!eat_name("in")) fail("expected 'in'", peek().offset);
        s->expr = parse_or_expression();  // not the inline if: `for x in xs if cond` filters
        if (eat_name("if")) s->expr2 = parse_expression();
        if (at_name("recursive")) fail("recursive loops are not supported", peek().offset);
        end_tag();
        ++loops_;
        s->bodies.push_back(parse_body({"else", "endfor"}));
        --loops_;
        if (take_block_keyword() == "else") {
            end_tag();
            s->bodies.push_back(parse_body({"endfor"}));
            end_block("endfor");
        } else {
            end_tag();
        }
        return s;
    }

    std::unique_ptr<Stmt> parse_set(std::size_t at) {
        const std::string first = expect_identifier();
        if (eat_op(".")) {  // namespace attribute
            auto s = stmt(Stmt::set, at);
            s->expr2 = node(Expr::variable, at);
            s->expr2->name = first;
            s->names.push_back(expect_identifier());
            expect_op("=");
            s->expr = parse_expression();
            end_tag();
            return s;
        }
        std::vector<std::string> names{first};
        while (eat_op(",")) names.push_back(expect_identifier());
        if (eat_op("=")) {
            auto s = stmt(Stmt::set, at);
            s->names = std::move(names);
            s->expr = parse_tuple_or_expression();
            end_tag();
            return s;
        }
        if (names.size() != 1) fail("a block set takes one name", at);
        auto s = stmt(Stmt::set_block, at);
        s->names = std::move(names);
        if (eat_op("|")) s->expr2 = parse_filter_block_chain();
        end_tag();
        s->bodies.push_back(parse_body({"endset"}));
        end_block("endset");
        return s;
    }

    // `name(a, b=default, ...)`: parameter names, each default or null.
    void parse_parameters(Stmt& s) {
        expect_op("(");
        while (!eat_op(")")) {
            if (!s.names.empty()) expect_op(",");
            if (eat_op(")")) break;
            s.names.push_back(expect_identifier());
            s.exprs.push_back(eat_op("=") ? parse_expression() : nullptr);
        }
    }

    std::unique_ptr<Stmt> parse_macro(std::size_t at) {
        auto s = stmt(Stmt::macro, at);
        s->text = expect_identifier();
        parse_parameters(*s);
        end_tag();
        const int loops = std::exchange(loops_, 0);
        s->bodies.push_back(parse_body({"endmacro"}));
        loops_ = loops;
        end_block("endmacro");
        return s;
    }

    // Expressions.

    // `a, b` without brackets is a tuple where Jinja allows one (`set x = a, b`).
    ExprPtr parse_tuple_or_expression() {
        const std::size_t at = peek().offset;
        ExprPtr e = parse_expression();
        if (!at_op(",")) return e;
        auto t = node(Expr::tuple, at);
        add(*t, std::move(e));
        while (eat_op(",")) add(*t, parse_expression());
        return t;
    }

    ExprPtr parse_expression() {
        Depth d(*this, peek().offset);
        ExprPtr e = parse_or_expression();
        while (at_name("if")) {
            const std::size_t at = next().offset;
            auto c = node(Expr::conditional, at);
            add(*c, std::move(e));
            add(*c, parse_or_expression());
            add(*c, eat_name("else") ? parse_expression() : nullptr);
            e = std::move(c);
        }
        return e;
    }

    ExprPtr binary(std::string op, ExprPtr l, ExprPtr r, std::size_t at) {
        auto b = node(Expr::binary, at);
        b->name = std::move(op);
        add(*b, std::move(l));
        add(*b, std::move(r));
        return b;
    }

    ExprPtr parse_or_expression() {
        ExprPtr e = parse_and();
        while (at_name("or")) {
            const std::size_t at = next().offset;
            e = binary("or", std::move(e), parse_and(), at);
        }
        return e;
    }

    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (at_name("and")) {
            const std::size_t at = next().offset;
            e = binary("and", std::move(e), parse_not(), at);
        }
        return e;
    }

    ExprPtr parse_not() {
        if (at_name("not")) {
            Depth d(*this, peek().offset);
            auto u = node(Expr::unary, next().offset);
            u->name = "not";
            add(*u, parse_not());
            return u;
        }
        return parse_compare();
    }

    // Comparisons chain as in Python: a < b < c is a < b and b < c (b is evaluated twice, harmless as
    // expressions have no side effects here).
    ExprPtr parse_compare() {
        ExprPtr e = parse_math1();
        ExprPtr chain;
        for (;;) {
            std::string op;
            const std::size_t at = peek().offset;
            if (peek().kind == Token::op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
                                              peek().text == "<=" || peek().text == ">="))
                op = next().text;
            else if (eat_name("in")) op = "in";
            else if (at_name("not") && peek(1).kind == Token::name && peek(1).text == "in") i_ += 2, op = "not in";
            else break;
            ExprPtr r = parse_math1();
            if (!chain) {
                chain = binary(op, std::move(e), std::move(r), at);
                continue;
            }
            ExprPtr left = clone(*chain->args[1]);
            chain = binary("and", std::move(chain), binary(op, std::move(left), std::move(r), at), at);
        }
        return chain ? std::move(chain) : std::move(e);
    }

    // Only a compare chain's right operand is cloned, and only its simple forms matter in practice.
    static ExprPtr clone(const Expr& e) {
        auto c = std::make_unique<Expr>();
        c->kind = e.kind;
        c->offset = e.offset;
        c->value = e.value;
        c->name = e.name;
        c->kwnames = e.kwnames;
        c->negated = e.negated;
        c->height = e.height;
        for (const auto& a : e.args) c->args.push_back(a ? clone(*a) : nullptr);
        return c;
    }

    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (at_op("+") || at_op("-")) {
            const Token& t = next();
            e = binary(t.text, std::move(e), parse_concat(), t.offset);
        }
        return e;
    }

    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (at_op("~")) {
            const std::size_t at = next().offset;
            e = binary("~", std::move(e), parse_math2(), at);
        }
        return e;
    }

    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
            const Token& t = next();
            e = binary(t.text, std::move(e), parse_pow(), t.offset);
        }
        return e;
    }

    ExprPtr parse_pow() {
        ExprPtr e = parse_unary();
        while (at_op("**")) {
            const std::size_t at = next().offset;
            e = binary("**", std::move(e), parse_unary(), at);
        }
        return e;
    }

    // As Jinja: `-x | f` is (-x) | f, the sign binding tighter than filters.
    ExprPtr parse_unary(bool with_filters = true) {
        ExprPtr e;
        if (at_op("-") || at_op("+")) {
            Depth d(*this, peek().offset);
            const Token& t = next();
            e = node(Expr::unary, t.offset);
            e->name = t.text;
            add(*e, parse_unary(false));
        } else {
            e = parse_primary_postfix();
        }
        return with_filters ? parse_filters(std::move(e)) : std::move(e);
    }

    // A filter block's chain, `name(args) | name ...`, applied to the block's text (a null input).
    ExprPtr parse_filter_block_chain() {
        auto f = node(Expr::filter, peek().offset);
        f->name = dotted_name();
        add(*f, nullptr);
        if (at_op("(")) parse_call_args(*f);
        return parse_filters(std::move(f));
    }

    // `| name(args)` and `is [not] name(args)`, left to right.
    ExprPtr parse_filters(ExprPtr e) {
        for (;;) {
            if (at_op("|")) {
                const std::size_t at = next().offset;
                auto f = node(Expr::filter, at);
                f->name = dotted_name();
                add(*f, std::move(e));
                if (at_op("(")) parse_call_args(*f);
                e = std::move(f);
            } else if (at_name("is")) {
                const std::size_t at = next().offset;
                auto t = node(Expr::test, at);
                t->negated = eat_name("not");
                t->name = dotted_name();
                add(*t, std::move(e));
                if (at_op("(")) parse_call_args(*t);
                else if (starts_operand()) add(*t, parse_primary_postfix());
                e = std::move(t);
            } else {
                return e;
            }
        }
    }

    // Whether a test's single argument without parentheses follows (`is equalto 3`, `is sameas none`).
    bool starts_operand() const {
        const Token& t = peek();
        if (t.kind == Token::string || t.kind == Token::integer || t.kind == Token::floating) return true;
        if (t.kind == Token::op) return t.text == "[" || t.text == "{";
        if (t.kind != Token::name) return false;
        static constexpr std::string_view stop[] = {"and", "or", "else", "if", "in", "not", "is", "recursive"};
        for (const auto s : stop)
            if (t.text == s) return false;
        return true;
    }

    std::string dotted_name() {
        std::string n = expect_identifier();
        while (at_op(".") && peek(1).kind == Token::name) {
            i_ += 1;
            n += "." + next().text;
        }
        return n;
    }

    // `(a, b, k=v)`: positional arguments, then keyword ones (kwnames holds their names in order).
    void parse_call_args(Expr& call) {
        expect_op("(");
        while (!eat_op(")")) {
            if (peek().kind == Token::name && peek(1).kind == Token::op && peek(1).text == "=") {
                call.kwnames.push_back(next().text);
                ++i_;
                add(call, parse_expression());
            } else {
                if (!call.kwnames.empty()) fail("a positional argument after a keyword argument", peek().offset);
                add(call, parse_expression());
            }
            if (!eat_op(",")) {
                expect_op(")");
                break;
            }
        }
    }

    ExprPtr parse_primary_postfix() {
        ExprPtr e = parse_primary();
        for (;;) {
            if (at_op(".")) {
                const std::size_t at = next().offset;
                auto a = node(Expr::attr, at);
                add(*a, std::move(e));
                if (peek().kind == Token::integer) {  // `x.0` is x[0]
                    a->kind = Expr::item;
                    auto k = node(Expr::literal, peek().offset);
                    k->value = std::int64_t(std::strtoll(next().text.c_str(), nullptr, 10));
                    add(*a, std::move(k));
                } else {
                    a->name = expect_identifier();
                }
                e = std::move(a);
            } else if (at_op("[")) {
                const std::size_t at = next().offset;
                Depth d(*this, at);
                e = parse_subscript(std::move(e), at);
            } else if (at_op("(")) {
                auto c = node(Expr::call, e->offset);
                add(*c, std::move(e));
                Depth d(*this, peek().offset);
                parse_call_args(*c);
                e = std::move(c);
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj, std::size_t at) {
        ExprPtr bound[3];
        int part = 0;
        for (;;) {
            if (at_op("]")) break;
            if (at_op(":")) {
                ++i_;
                if (++part > 2) fail("a slice takes at most 3 parts", at);
                continue;
            }
            if (bound[part]) fail("expected ':' or ']'", peek().offset);
            bound[part] = parse_expression();
        }
        expect_op("]");
        if (part == 0) {
            if (!bound[0]) fail("empty subscript", at);
            auto i = node(Expr::item, at);
            add(*i, std::move(obj));
            add(*i, std::move(bound[0]));
            return i;
        }
        auto s = node(Expr::slice, at);
        add(*s, std::move(obj));
        for (auto& b : bound) add(*s, std::move(b));
        return s;
    }

    ExprPtr parse_primary() {
        const Token& t = peek();
        const std::size_t at = t.offset;
        switch (t.kind) {
            case Token::string: {
                auto e = node(Expr::literal, at);
                std::string s = next().text;
                while (peek().kind == Token::string) s += next().text;  // adjacent literals join, as in Python
                e->value = std::move(s);
                return e;
            }
            case Token::integer: {
                auto e = node(Expr::literal, at);
                errno = 0;
                const long long v = std::strtoll(next().text.c_str(), nullptr, 10);
                if (errno == ERANGE) fail("integer literal out of range", at);
                e->value = std::int64_t(v);
                return e;
            }
            case Token::floating: {
                auto e = node(Expr::literal, at);
                e->value = std::strtod(next().text.c_str(), nullptr);
                return e;
            }
            case Token::name: {
                const std::string& n = next().text;
                auto e = node(Expr::literal, at);
                if (n == "true" || n == "True") e->value = true;
                else if (n == "false" || n == "False") e->value = false;
                else if (n == "none" || n == "None") e->value = None{};
                else {
                    e->kind = Expr::variable;
                    e->name = n;
                }
                return e;
            }
            case Token::op: {
                Depth d(*this, at);
                if (eat_op("(")) {
                    if (eat_op(")")) return node(Expr::tuple, at);
                    ExprPtr e = parse_expression();
                    if (!at_op(",")) {
                        expect_op(")");
                        return e;
                    }
                    auto tup = node(Expr::tuple, at);
                    add(*tup, std::move(e));
                    while (eat_op(",") && !at_op(")")) add(*tup, parse_expression());
                    expect_op(")");
                    return tup;
                }
                if (eat_op("[")) {
                    auto l = node(Expr::list, at);
                    while (!eat_op("]")) {
                        add(*l, parse_expression());
                        if (!eat_op(",")) {
                            expect_op("]");
                            break;
                        }
                    }
                    return l;
                }
                if (eat_op("{")) {
                    auto m = node(Expr::dict, at);
                    while (!eat_op("}")) {
                        add(*m, parse_expression());
                        expect_op(":");
                        add(*m, parse_expression());
                        if (!eat_op(",")) {
                            expect_op("}");
                            break;
                        }
                    }
                    return m;
                }
                break;
            }
            default: break;
        }
        fail("expected an expression, got " + describe(t), at);
    }

    std::string_view src_;
    std::vector<Token> t_;
    std::size_t i_ = 0;
    int depth_ = 0;
    int loops_ = 0;
};

}  // namespace forge::chat::jinja
