#pragma once
// forge reports every failure of input (files, prompts, requests, arguments) as a forge::Error whose
// message names what was wrong; it never aborts on bad input.
#include <stdexcept>
#include <string>

namespace forge {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace forge
