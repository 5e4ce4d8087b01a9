#pragma once
// The parsed template: expressions and statements, each with the source offset errors name.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "forge/chat/jinja/value.hpp"

namespace forge::chat::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum Kind {
        literal,    // value
        variable,   // name
        list,       // args: items
        tuple,      // args: items
        dict,       // args: key, value, key, value...
        attr,       // args[0].name
        item,       // args[0][args[1]]
        slice,      // args[0][args[1]:args[2]:args[3]], each bound may be null
        call,       // args[0](args[1..]); the last kwnames.size() args are keyword arguments
        filter,     // args[0] | name(args[1..]); args[0] is null inside a filter block
        test,       // args[0] is [not] name(args[1..]); negated
        unary,      // op args[0]: "not", "-", "+"
        binary,     // args[0] op args[1]
        conditional,  // args[0] if args[1] else args[2] (args[2] may be null)
    };
    Kind kind;
    std::size_t offset;
    Value value;
    std::string name;  // name, attribute, filter, test or operator
    std::vector<ExprPtr> args;
    std::vector<std::string> kwnames;
    bool negated = false;
    int height = 1;  // of the tree below, this node included
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
    enum Kind {
        data,          // text: template text
        output,        // {{ expr }}
        if_,           // exprs: conditions; bodies: one per condition, then else
        for_,          // names: targets; expr: iterable; expr2: filter condition; bodies: body, else
        set,           // names: targets, or expr2 is the namespace and names[0] its attribute; expr: value
        set_block,     // names[0] = body rendered (through expr2, a filter chain, when given)
        macro,         // text: name; names: parameters; exprs: defaults (null for none); bodies[0]
        filter_block,  // expr: filter chain over null; bodies[0]
        break_,
        continue_,
        do_,           // expr evaluated for its effect
    };
    Kind kind;
    std::size_t offset;
    std::string text;
    std::vector<std::string> names;
    ExprPtr expr, expr2;
    std::vector<ExprPtr> exprs;
    std::vector<Body> bodies;
};

}  // namespace forge::chat::jinja
