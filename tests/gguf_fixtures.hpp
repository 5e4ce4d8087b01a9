#pragma once
// Test files derived from real ones: the same GGUF laid out again by forge's Writer, optionally with
// metadata values replaced, so a test can make "this model, but with X wrong" without shipping files.
#include <map>
#include <string>
#include <vector>

#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"

namespace forge::test {

// `f`'s metadata (in file order, `overrides` replacing values of the same key) and tensors. The tensors'
// bytes are not copied: `f` must outlive the returned Writer.
inline gguf::Writer rewrite(const gguf::File& f, const std::map<std::string, gguf::Value>& overrides = {}) {
    gguf::Writer w(f.version());
    for (const auto& [key, value] : f.metadata()) {
        const auto o = overrides.find(key);
        w.set(key, o != overrides.end() ? o->second : value);
    }
    for (const auto& t : f.tensors()) w.add_tensor(t.name, t.dims, t.dtype(), {t.data, t.bytes});
    return w;
}

}  // namespace forge::test
