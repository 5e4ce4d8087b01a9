#pragma once
// The message of the forge::Error that f() throws ("" if it throws none): tests compare messages.
#include <string>
#include <utility>

#include "forge/core/error.hpp"

namespace forge::test {

template <class F>
std::string error_of(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace forge::test
