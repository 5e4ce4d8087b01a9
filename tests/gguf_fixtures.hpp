#pragma once
// Test files derived from real ones: the same GGUF laid out again by forge's Writer, optionally with
// metadata values replaced, so a test can make "this model, but with X wrong" without shipping files.
#include <map>
#include <string>
#include <vector>

#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"
#include "testdata.hpp"

namespace forge::test {

// `f`'s metadata (in file order, `overrides` replacing values of the same key) and tensors, those named in
// `types` labelled with that type instead (bytes unchanged: it must take as many). The tensors' bytes are
// not copied: `f` must outlive the returned Writer.
inline gguf::Writer rewrite(const gguf::File& f, const std::map<std::string, gguf::Value>& overrides = {},
                            const std::map<std::string, DType>& types = {}) {
    gguf::Writer w(f.version());
    for (const auto& [key, value] : f.metadata()) {
        const auto o = overrides.find(key);
        w.set(key, o != overrides.end() ? o->second : value);
    }
    for (const auto& t : f.tensors()) {
        const auto r = types.find(t.name);
        w.add_tensor(t.name, t.dims, r != types.end() ? r->second : t.dtype(), {t.data, t.bytes});
    }
    return w;
}

// synth-llama-f32.gguf with one layer matrix's f32 bytes labelled I32: a type forge reads but cannot compute with.
inline std::vector<std::byte> unsupported_type_model_bytes() {
    const auto f = gguf::File::open(model_path("synth-llama-f32.gguf"));
    return rewrite(f, {}, {{"blk.1.ffn_down.weight", DType::I32}}).bytes();
}

}  // namespace forge::test
