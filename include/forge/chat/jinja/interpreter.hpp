#pragma once
// Runs a parsed template: statements write into one String (which keeps the origin of every byte),
// expressions evaluate with Jinja's semantics and its default Undefined (printing it gives "", testing
// it is false, iterating it is empty, reading an attribute of it is an error). Scopes follow Jinja: a
// `for` body and a macro call get their own, `if` does not, so `set` inside a loop does not leak and
// templates carry state out of loops through namespace().
#include <cerrno>
#include <climits>
#include <cmath>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "forge/chat/jinja/ast.hpp"
#include "forge/chat/jinja/builtins.hpp"
#include "forge/chat/jinja/runtime.hpp"

namespace forge::chat::jinja {

struct Scope {
    explicit Scope(std::shared_ptr<Scope> parent = nullptr) : parent(std::move(parent)) {}

    const Value* find(const std::string& name) const {
        for (const Scope* s = this; s; s = s->parent.get())
            if (const auto it = s->vars.find(name); it != s->vars.end()) return &it->second;
        return nullptr;
    }

    std::unordered_map<std::string, Value> vars;
    std::shared_ptr<Scope> parent;
};

class Interpreter : public Runtime {
public:
    explicit Interpreter(std::string_view src) : Runtime(src) { now = std::time(nullptr); }

    // A macro's closure holds the scope it was defined in, which holds the macro: empty those scopes.
    ~Interpreter() {
        for (const auto& s : macro_scopes_) s->vars.clear();
    }

    // The root scope: Jinja's globals, with `context` (the caller's values) over them.
    std::shared_ptr<Scope> globals() {
        auto g = std::make_shared<Scope>();
        const auto fn = [&](const char* name, Function f) { g->vars[name] = std::make_shared<Callable>(Callable{name, std::move(f)}); };
        fn("range", [](Runtime& rt, Args& a) { return range(rt, a); });
        fn("namespace", [](Runtime&, Args& a) {
            auto ns = std::make_shared<Namespace>();
            for (const auto& p : a.positional) {
                if (!p.is_dict()) throw Error("namespace() takes a mapping or keyword arguments");
                for (const auto& [k, v] : p.as_dict().entries()) ns->attrs.set(k, v);
            }
            for (const auto& [k, v] : a.keyword) ns->attrs.set(Value(k), v);
            return Value(ns);
        });
        fn("dict", [](Runtime&, Args& a) {
            Dict d;
            for (const auto& p : a.positional) {
                if (!p.is_dict()) throw Error("dict() takes a mapping or keyword arguments");
                for (const auto& [k, v] : p.as_dict().entries()) d.set(k, v);
            }
            for (const auto& [k, v] : a.keyword) d.set(Value(k), v);
            return Value(std::move(d));
        });
        fn("raise_exception", [](Runtime& rt, Args& a) -> Value {
            const auto p = builtin::bind("raise_exception", a, {"message"});
            throw Error("the template raised: " + to_str(rt, p[0]).str());
        });
        fn("strftime_now", [](Runtime& rt, Args& a) {
            const std::string f = builtin::need_string("strftime_now", builtin::bind("strftime_now", a, {"format"})[0]).str();
            std::tm tm{};
            localtime_r(&rt.now, &tm);
            char buf[256];
            const std::size_t n = f.empty() ? 0 : std::strftime(buf, sizeof buf, f.c_str(), &tm);
            if (n == 0 && !f.empty()) throw Error("strftime_now: the format gives nothing or over 255 bytes");
            return Value(std::string(buf, n));
        });
        return g;
    }

    // Renders `body` into `out`.
    void run(const Body& body, const std::shared_ptr<Scope>& scope, String& out) { render(body, scope, out); }

private:
    enum class Flow { normal, break_, continue_ };

    struct Nesting {
        Nesting(Interpreter& in, std::size_t at, int& counter, int limit, const char* name) : in(in), counter(counter) {
            if (++counter > limit || ++in.render_depth_ > kMaxRenderDepth) {
                --counter, --in.render_depth_;
                in.fail(counter + 1 > limit ? std::string(name) + " deeper than its limit (" + std::to_string(limit) + ")"
                                            : "blocks and calls nest deeper than kMaxRenderDepth (" + std::to_string(kMaxRenderDepth) + ")",
                        at);
            }
        }
        ~Nesting() { --counter, --in.render_depth_; }
        Interpreter& in;
        int& counter;
    };

    static Value range(Runtime& rt, const Args& a) {
        if (!a.keyword.empty() || a.positional.empty() || a.positional.size() > 3) throw Error("range takes 1 to 3 integers");
        std::int64_t v[3] = {0, 0, 1};
        for (std::size_t i = 0; i < a.positional.size(); ++i) v[a.positional.size() == 1 ? 1 : i] = builtin::need_int("range", a.positional[i]);
        const auto [start, stop, step] = v;
        if (step == 0) throw Error("range: step is zero");
        const long double n = std::max<long double>(0, std::ceil((static_cast<long double>(stop) - start) / step));
        if (n > kMaxLoopIterations) throw Error("range of " + std::to_string(static_cast<long long>(n)) + " items, over kMaxLoopIterations (" + std::to_string(kMaxLoopIterations) + ")");
        rt.iterate(static_cast<std::int64_t>(n));
        List out;
        for (std::int64_t i = 0; i < std::int64_t(n); ++i) out.push_back(start + i * step);
        return out;
    }

    void append(String& out, const String& s, std::size_t at) {
        if (out.size() + s.size() > kMaxOutputBytes)
            fail("output over kMaxOutputBytes (" + std::to_string(kMaxOutputBytes) + ")", at);
        out += s;
    }

    Flow render(const Body& body, const std::shared_ptr<Scope>& scope, String& out) {
        for (const auto& s : body) {
            const Flow f = render(*s, scope, out);
            if (f != Flow::normal) return f;
        }
        return Flow::normal;
    }

    Flow render(const Stmt& s, const std::shared_ptr<Scope>& scope, String& out) {
        switch (s.kind) {
            case Stmt::data: append(out, String(s.text), s.offset); return Flow::normal;
            case Stmt::output: append(out, to_str(*this, eval(*s.expr, *scope)), s.offset); return Flow::normal;
            case Stmt::if_: {
                Nesting n(*this, s.offset, blocks_, kMaxRenderDepth, "blocks");
                for (std::size_t i = 0; i < s.exprs.size(); ++i)
                    if (truthy(eval(*s.exprs[i], *scope))) return render(s.bodies[i], scope, out);
                return s.bodies.size() > s.exprs.size() ? render(s.bodies.back(), scope, out) : Flow::normal;
            }
            case Stmt::for_: return render_for(s, scope, out);
            case Stmt::set: {
                Value v = eval(*s.expr, *scope);
                if (s.expr2) {
                    const Value ns = eval(*s.expr2, *scope);
                    if (!ns.is(Value::namespace_)) fail("'" + s.expr2->name + "' is not a namespace, so its attributes cannot be set", s.offset);
                    mutating(ns);
                    ns.as_namespace().attrs.set(Value(s.names[0]), std::move(v));
                } else {
                    assign(s.names, std::move(v), *scope, s.offset);
                }
                return Flow::normal;
            }
            case Stmt::set_block: {
                String captured;
                render_nested(s.bodies[0], scope, captured, s.offset);
                scope->vars[s.names[0]] = s.expr2 ? eval_with_input(*s.expr2, *scope, Value(std::move(captured))) : Value(std::move(captured));
                return Flow::normal;
            }
            case Stmt::filter_block: {
                String captured;
                render_nested(s.bodies[0], scope, captured, s.offset);
                append(out, to_str(*this, eval_with_input(*s.expr, *scope, Value(std::move(captured)))), s.offset);
                return Flow::normal;
            }
            case Stmt::macro:
                scope->vars[s.text] = macro(s, scope);
                macro_scopes_.push_back(scope);
                return Flow::normal;
            case Stmt::break_: return Flow::break_;
            case Stmt::continue_: return Flow::continue_;
            case Stmt::do_: eval(*s.expr, *scope); return Flow::normal;
        }
        return Flow::normal;
    }

    void render_nested(const Body& body, const std::shared_ptr<Scope>& scope, String& out, std::size_t at) {
        Nesting n(*this, at, blocks_, kMaxRenderDepth, "blocks");
        render(body, scope, out);
    }

    // `set a, b = pair` unpacks as Python does.
    void assign(const std::vector<std::string>& names, Value v, Scope& scope, std::size_t at) {
        if (names.size() == 1) {
            scope.vars[names[0]] = std::move(v);
            return;
        }
        const List items = v.is_list() ? v.as_list() : v.is_string() || v.is_dict() ? items_of(*this, v) : List{};
        if (items.size() != names.size())
            fail("cannot unpack " + std::string(v.type_name()) + " into " + std::to_string(names.size()) + " names", at);
        for (std::size_t i = 0; i < names.size(); ++i) scope.vars[names[i]] = items[i];
    }

    Flow render_for(const Stmt& s, const std::shared_ptr<Scope>& scope, String& out) {
        Nesting n(*this, s.offset, blocks_, kMaxRenderDepth, "blocks");
        const Value seq = eval(*s.expr, *scope);
        List items;
        try {
            items = items_of(*this, seq);
        } catch (const Error& e) {
            fail(e.what(), s.expr->offset);
        }
        if (s.expr2) {  // `for x in xs if cond`: the loop sees only the items that pass
            List kept;
            for (auto& item : items) {
                auto inner = std::make_shared<Scope>(scope);
                assign(s.names, item, *inner, s.offset);
                if (truthy(eval(*s.expr2, *inner))) kept.push_back(std::move(item));
            }
            items = std::move(kept);
        }
        if (items.empty()) return s.bodies.size() > 1 ? render(s.bodies[1], scope, out) : Flow::normal;
        const auto count = std::int64_t(items.size());
        for (std::int64_t i = 0; i < count; ++i) {
            auto inner = std::make_shared<Scope>(scope);
            assign(s.names, items[std::size_t(i)], *inner, s.offset);
            Dict loop;
            loop.set("index", i + 1);
            loop.set("index0", i);
            loop.set("revindex", count - i);
            loop.set("revindex0", count - i - 1);
            loop.set("first", i == 0);
            loop.set("last", i == count - 1);
            loop.set("length", count);
            loop.set("previtem", i > 0 ? items[std::size_t(i - 1)] : Value(Undefined{"loop.previtem"}));
            loop.set("nextitem", i + 1 < count ? items[std::size_t(i + 1)] : Value(Undefined{"loop.nextitem"}));
            inner->vars["loop"] = std::move(loop);
            if (render(s.bodies[0], inner, out) == Flow::break_) break;
        }
        return Flow::normal;
    }

    // A macro: its parameters bound from the call's arguments (defaults evaluated at the call), its body
    // rendered in a scope over the one it was defined in; the call gives the rendered text.
    Value macro(const Stmt& m, const std::shared_ptr<Scope>& defined_in) {
        Function f = [this, &m, defined_in](Runtime&, Args& a) -> Value {
            Nesting n(*this, m.offset, calls_, kMaxCallDepth, "macro calls");
            auto scope = std::make_shared<Scope>(defined_in);
            if (a.positional.size() > m.names.size())
                throw Error("macro '" + m.text + "' takes " + std::to_string(m.names.size()) + " arguments, got " + std::to_string(a.positional.size()));
            std::vector<bool> bound(m.names.size());
            for (std::size_t i = 0; i < a.positional.size(); ++i) scope->vars[m.names[i]] = a.positional[i], bound[i] = true;
            for (auto& [k, v] : a.keyword) {
                const auto it = std::find(m.names.begin(), m.names.end(), k);
                if (it == m.names.end()) throw Error("macro '" + m.text + "' has no parameter '" + k + "'");
                scope->vars[k] = v;
                bound[std::size_t(it - m.names.begin())] = true;
            }
            for (std::size_t i = 0; i < m.names.size(); ++i)
                if (!bound[i]) scope->vars[m.names[i]] = m.exprs[i] ? eval(*m.exprs[i], *scope) : Value(Undefined{m.names[i]});
            String out;
            render(m.bodies[0], scope, out);
            return out;
        };
        return std::make_shared<Callable>(Callable{m.text, std::move(f)});
    }

    // A filter chain whose innermost input is `input` (filter blocks, `set x | filter` blocks).
    Value eval_with_input(const Expr& e, Scope& scope, Value input) {
        const Value* saved = std::exchange(block_input_, &input);
        Value v = eval(e, scope);
        block_input_ = saved;
        return v;
    }

    Value eval(const Expr& e, Scope& scope) {
        try {
            return eval_impl(e, scope);
        } catch (const LocatedError&) {
            throw;
        } catch (const Error& err) {
            fail(err.what(), e.offset);
        }
    }

    Args eval_args(const Expr& e, std::size_t first, Scope& scope) {
        Args a;
        const std::size_t kw_from = e.args.size() - e.kwnames.size();
        for (std::size_t i = first; i < e.args.size(); ++i) {
            Value v = eval(*e.args[i], scope);
            if (i < kw_from) a.positional.push_back(std::move(v));
            else a.keyword.emplace_back(e.kwnames[i - kw_from], std::move(v));
        }
        return a;
    }

    [[noreturn]] static void undefined_error(const Value& v, const std::string& reading) {
        throw Error("'" + v.undefined_name() + "' is undefined (reading " + reading + ")");
    }

    Value bound_method(const Value& self, const std::string& name) {
        return std::make_shared<Callable>(Callable{name, [self, name](Runtime& rt, Args& a) { return method(rt, self, name, a); }});
    }

    Value get_attr(const Value& obj, const std::string& name) {
        if (obj.is_undefined()) undefined_error(obj, "." + name);
        if (has_method(obj, name)) return bound_method(obj, name);
        if (obj.is_dict()) {
            const Value* v = obj.as_dict().find(name);
            return v ? *v : Value(Undefined{name});
        }
        if (obj.is(Value::namespace_)) {
            const Value* v = obj.as_namespace().attrs.find(name);
            return v ? *v : Value(Undefined{name});
        }
        return Undefined{name};
    }

    static std::int64_t normalize_index(std::int64_t i, std::size_t size) { return i < 0 ? i + std::int64_t(size) : i; }

    Value get_item(const Value& obj, const Value& key) {
        if (obj.is_undefined()) undefined_error(obj, "[" + repr(*this, key) + "]");
        if (obj.is_dict()) {
            if (const Value* v = obj.as_dict().find(key)) return *v;
            if (key.is_string() && has_method(obj, key.as_string().str())) return bound_method(obj, key.as_string().str());
            return Undefined{key.is_string() ? key.as_string().str() : repr(*this, key)};
        }
        if (obj.is(Value::namespace_) && key.is_string()) return get_attr(obj, key.as_string().str());
        if ((obj.is_list() || obj.is_string()) && (key.is(Value::integer) || key.is(Value::boolean))) {
            const List chars = obj.is_string() ? items_of(*this, obj) : List{};
            const List& l = obj.is_list() ? obj.as_list() : chars;
            const std::int64_t i = normalize_index(key.as_int(), l.size());
            if (i < 0 || i >= std::int64_t(l.size())) return Undefined{"index " + std::to_string(key.as_int())};
            return l[std::size_t(i)];
        }
        if (key.is_string()) return get_attr(obj, key.as_string().str());
        return Undefined{repr(*this, key)};
    }

    // Python's slice semantics on lists and strings (by characters).
    Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
        if (!obj.is_list() && !obj.is_string()) throw Error(std::string("cannot slice a ") + obj.type_name());
        const List chars = obj.is_string() ? items_of(*this, obj) : List{};
        const List& l = obj.is_list() ? obj.as_list() : chars;
        const auto n = std::int64_t(l.size());
        const auto bound = [&](const Value& v) -> std::optional<std::int64_t> {
            if (v.is_undefined() || v.is_none()) return std::nullopt;
            return builtin::need_int("slice", v);
        };
        const std::int64_t step = bound(step_v).value_or(1);
        if (step == 0) throw Error("slice step cannot be zero");
        const auto clampi = [&](std::optional<std::int64_t> b, std::int64_t dflt) {
            if (!b) return dflt;
            std::int64_t i = *b < 0 ? *b + n : *b;
            return step > 0 ? std::clamp<std::int64_t>(i, 0, n) : std::clamp<std::int64_t>(i, -1, n - 1);
        };
        const std::int64_t start = clampi(bound(start_v), step > 0 ? 0 : n - 1), stop = clampi(bound(stop_v), step > 0 ? n : -1);
        List out;
        for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(l[std::size_t(i)]);
        iterate(std::int64_t(out.size()));
        if (!obj.is_string()) return out;
        String s = obj.as_string().derive("");
        for (const auto& c : out) s += c.as_string();
        return s;
    }

    Value eval_impl(const Expr& e, Scope& scope) {
        switch (e.kind) {
            case Expr::literal: return e.value;
            case Expr::variable: {
                const Value* v = scope.find(e.name);
                return v ? *v : Value(Undefined{e.name});
            }
            case Expr::list:
            case Expr::tuple: {
                List l;
                for (const auto& a : e.args) l.push_back(eval(*a, scope));
                return l;
            }
            case Expr::dict: {
                Dict d;
                for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) d.set(eval(*e.args[i], scope), eval(*e.args[i + 1], scope));
                return d;
            }
            case Expr::attr: return get_attr(eval(*e.args[0], scope), e.name);
            case Expr::item: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope));
            case Expr::slice: {
                const auto opt = [&](int i) { return e.args[std::size_t(i)] ? eval(*e.args[std::size_t(i)], scope) : Value(); };
                return slice(eval(*e.args[0], scope), opt(1), opt(2), opt(3));
            }
            case Expr::call: {
                const Value callee = eval(*e.args[0], scope);
                Args a = eval_args(e, 1, scope);
                if (!callee.is(Value::callable)) {
                    const std::string what = e.args[0]->kind == Expr::variable ? "'" + e.args[0]->name + "'" : std::string("a ") + callee.type_name();
                    throw Error(what + (callee.is_undefined() ? " is undefined, so it cannot be called" : " is not callable"));
                }
                return callee.as_callable().fn(*this, a);
            }
            case Expr::filter: {
                const Value input = e.args[0] ? eval(*e.args[0], scope) : *block_input_;
                const Args a = eval_args(e, 1, scope);
                return filter(*this, e.name, input, a);
            }
            case Expr::test: {
                const Value v = eval(*e.args[0], scope);
                const Args a = eval_args(e, 1, scope);
                return test(*this, e.name, v, a) != e.negated;
            }
            case Expr::unary: {
                const Value v = eval(*e.args[0], scope);
                if (e.name == "not") return !truthy(v);
                if (!v.is_number()) throw Error(std::string("bad operand for unary ") + e.name + ": " + v.type_name());
                if (e.name == "+") return v.is(Value::floating) ? v : Value(v.as_int());
                if (v.is(Value::floating)) return -v.as_double();
                if (v.as_int() == INT64_MIN) throw Error("integer overflow");
                return -v.as_int();
            }
            case Expr::binary: {
                if (e.name == "and" || e.name == "or") {
                    Value l = eval(*e.args[0], scope);
                    if (truthy(l) == (e.name == "or")) return l;
                    return eval(*e.args[1], scope);
                }
                return binary(e.name, eval(*e.args[0], scope), eval(*e.args[1], scope));
            }
            case Expr::conditional:
                if (truthy(eval(*e.args[1], scope))) return eval(*e.args[0], scope);
                return e.args[2] ? eval(*e.args[2], scope) : Value(Undefined{"else"});
        }
        return Undefined{};
    }

    bool contains(const Value& container, const Value& item) {
        if (container.is_string()) {
            if (!item.is_string()) throw Error(std::string("'in <string>' needs a string, got ") + item.type_name());
            charge(container.as_string().size());
            return container.as_string().str().find(item.as_string().str()) != std::string::npos;
        }
        if (container.is_dict()) return container.as_dict().find(item) != nullptr;
        if (container.is(Value::namespace_)) return container.as_namespace().attrs.find(item) != nullptr;
        for (const auto& x : items_of(*this, container)) {
            iterate();
            if (equals(*this, x, item)) return true;
        }
        return false;
    }


    Value repeat(const Value& seq, std::int64_t n) {
        n = std::max<std::int64_t>(n, 0);
        if (seq.is_string()) {
            const String& s = seq.as_string();
            if (!s.empty() && n > std::int64_t(kMaxOutputBytes / s.size())) charge(0, kMaxOutputBytes + 1);
            charge(s.size() * std::size_t(n), s.size() * std::size_t(n));
            String out;
            for (std::int64_t i = 0; i < n; ++i) out += s;
            return out;
        }
        const List& l = seq.as_list();
        if (!l.empty() && n > kMaxLoopIterations / std::int64_t(l.size())) iterate(kMaxLoopIterations + 1);
        iterate(std::int64_t(l.size()) * n);
        List out;
        for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), l.begin(), l.end());
        return out;
    }

    Value binary(const std::string& op, const Value& l, const Value& r) {
        if (op == "==") return equals(*this, l, r);
        if (op == "!=") return !equals(*this, l, r);
        if (op == "<") return compare(*this, l, r) < 0;
        if (op == ">") return compare(*this, l, r) > 0;
        if (op == "<=") return compare(*this, l, r) <= 0;
        if (op == ">=") return compare(*this, l, r) >= 0;
        if (op == "in") return contains(r, l);
        if (op == "not in") return !contains(r, l);
        if (op == "~") {
            String s = to_str(*this, l);
            const String t = to_str(*this, r);
            charge(s.size() + t.size(), s.size() + t.size());
            s += t;
            return s;
        }
        if (op == "+" && l.is_string() && r.is_string()) return binary("~", l, r);
        // Where Jinja raises, a string plus none or undefined is the string, as llama.cpp's engine has it
        // (templates of real models rely on it: Command R+, FireFunction).
        if (op == "+" && ((l.is_string() && (r.is_none() || r.is_undefined())) || (r.is_string() && (l.is_none() || l.is_undefined()))))
            return l.is_string() ? l : r;
        if (op == "+" && l.is_list() && r.is_list()) {
            iterate(std::int64_t(l.as_list().size() + r.as_list().size()));
            List out = l.as_list();
            out.insert(out.end(), r.as_list().begin(), r.as_list().end());
            return out;
        }
        if (op == "*" && (l.is_string() || l.is_list()) && (r.is(Value::integer) || r.is(Value::boolean))) return repeat(l, r.as_int());
        if (op == "*" && (r.is_string() || r.is_list()) && (l.is(Value::integer) || l.is(Value::boolean))) return repeat(r, l.as_int());
        if (!l.is_number() || !r.is_number())
            throw Error("unsupported operand types for " + op + ": " + l.type_name() + " and " + r.type_name());
        const bool ints = !l.is(Value::floating) && !r.is(Value::floating);
        if (op == "/") {
            if (r.as_double() == 0) throw Error("division by zero");
            return l.as_double() / r.as_double();
        }
        if (ints) {
            const std::int64_t a = l.as_int(), b = r.as_int();
            std::int64_t out = 0;
            if (op == "+" || op == "-" || op == "*") {
                const bool overflow = op == "+" ? __builtin_add_overflow(a, b, &out) : op == "-" ? __builtin_sub_overflow(a, b, &out) : __builtin_mul_overflow(a, b, &out);
                if (overflow) throw Error("integer overflow");
                return out;
            }
            if (op == "//" || op == "%") {
                if (b == 0) throw Error("division by zero");
                if (a == INT64_MIN && b == -1) throw Error("integer overflow");
                std::int64_t q = a / b, m = a % b;
                if (m != 0 && ((m < 0) != (b < 0))) --q, m += b;  // Python floors
                return op == "//" ? q : m;
            }
            if (op == "**") {
                if (b < 0) return std::pow(double(a), double(b));
                std::int64_t acc = 1, base = a;
                for (std::int64_t e = b; e > 0; e >>= 1) {  // by squaring, each product checked
                    if ((e & 1) && __builtin_mul_overflow(acc, base, &acc)) throw Error("integer overflow");
                    if (e > 1 && __builtin_mul_overflow(base, base, &base)) throw Error("integer overflow");
                }
                return acc;
            }
        }
        const double a = l.as_double(), b = r.as_double();
        if (op == "+") return a + b;
        if (op == "-") return a - b;
        if (op == "*") return a * b;
        if (op == "**") return std::pow(a, b);
        if (b == 0) throw Error("division by zero");
        if (op == "//") return std::floor(a / b);
        if (op == "%") {
            const double m = std::fmod(a, b);
            return m != 0 && ((m < 0) != (b < 0)) ? m + b : m;
        }
        throw Error("unknown operator " + op);
    }

    std::vector<std::shared_ptr<Scope>> macro_scopes_;
    int blocks_ = 0, calls_ = 0, render_depth_ = 0;
    const Value* block_input_ = nullptr;
};

}  // namespace forge::chat::jinja
