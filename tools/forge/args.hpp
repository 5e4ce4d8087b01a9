#pragma once
// Command-line options for the forge subcommands: each subcommand declares its options, and anything
// undeclared, a missing value or a malformed number is a forge::Error naming the option.
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"

namespace forge::cli {

struct Option {
    std::string_view name;   // "--temp"
    std::string_view alias;  // "-t", or empty
    bool takes_value = true;
};

class Args {
public:
    Args(int argc, char** argv, std::initializer_list<Option> options) : options_(options) {
        for (int i = 1; i < argc; ++i) {
            const std::string_view a = argv[i];
            if (a.size() < 2 || a[0] != '-' || is_number(a)) {
                positional_.emplace_back(a);
                continue;
            }
            const Option* o = find(a);
            if (!o) throw Error("unknown option '" + std::string(a) + "'");
            if (!o->takes_value) {
                values_[std::string(o->name)] = "";
            } else {
                if (i + 1 >= argc) throw Error("option " + std::string(a) + " needs a value");
                values_[std::string(o->name)] = argv[++i];
                every_[std::string(o->name)].emplace_back(argv[i]);
            }
        }
    }

    bool has(std::string_view name) const { return values_.count(std::string(name)) != 0; }
    std::optional<std::string> get(std::string_view name) const {
        const auto it = values_.find(std::string(name));
        if (it == values_.end()) return std::nullopt;
        return it->second;
    }
    std::string get_or(std::string_view name, std::string fallback) const { return get(name).value_or(std::move(fallback)); }
    // Every value of an option given more than once, in order (get() has the last).
    std::vector<std::string> all(std::string_view name) const {
        const auto it = every_.find(std::string(name));
        return it == every_.end() ? std::vector<std::string>{} : it->second;
    }

    template <class T>
    T number(std::string_view name, T fallback) const {
        const auto v = get(name);
        if (!v) return fallback;
        T out{};
        const char* end = v->data() + v->size();
        const auto [ptr, ec] = std::from_chars(v->data(), end, out);
        if (ec != std::errc() || ptr != end)
            throw Error("option " + std::string(name) + " expects a number, got '" + *v + "'");
        return out;
    }

    const std::vector<std::string>& positional() const { return positional_; }

private:
    static bool is_number(std::string_view a) { return a.size() > 1 && a[0] == '-' && (a[1] == '.' || (a[1] >= '0' && a[1] <= '9')); }
    const Option* find(std::string_view a) const {
        for (const auto& o : options_)
            if (o.name == a || (!o.alias.empty() && o.alias == a)) return &o;
        return nullptr;
    }

    std::vector<Option> options_;
    std::map<std::string, std::string> values_;
    std::map<std::string, std::vector<std::string>> every_;
    std::vector<std::string> positional_;
};

// Splits "1,2,3" into token ids.
inline std::vector<std::int32_t> parse_ids(std::string_view s) {
    std::vector<std::int32_t> out;
    while (!s.empty()) {
        const auto comma = s.find(',');
        const std::string_view item = s.substr(0, comma);
        std::int32_t v{};
        const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size())
            throw Error("bad token id '" + std::string(item) + "' in --tokens");
        out.push_back(v);
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return out;
}

}  // namespace forge::cli
