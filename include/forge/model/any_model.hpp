#pragma once
// A model of any traits behind one interface, so tools and servers can hold whichever model a file
// needs. This header has no kernels in it: see model_adapter.hpp for the implementation and
// open_model.hpp for choosing one.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "forge/gguf/reader.hpp"
#include "forge/model/options.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge {

class AnyModel {
public:
    virtual ~AnyModel() = default;
    // As Model::prefill / Model::decode.
    virtual std::span<const float> prefill(std::span<const std::int32_t> tokens, float* all_logits = nullptr) = 0;
    std::span<const float> decode(std::int32_t token) { return prefill(std::span(&token, 1)); }
    virtual void reset() = 0;
    virtual int position() const = 0;
    virtual int context() const = 0;
    virtual int threads() const = 0;
    virtual std::size_t kv_cache_bytes() const = 0;
    virtual const ModelShape& shape() const = 0;
    virtual const gguf::File& file() const = 0;
    // The compiled traits' name, or empty on the runtime-shape path.
    virtual std::string_view compiled_name() const = 0;
    // What computes the model: "cpu", or the GPU device's name.
    virtual std::string_view device_name() const { return "cpu"; }
};

// Defined in model_adapter.hpp; instantiated per traits type where the program chooses.
template <class Traits>
std::unique_ptr<AnyModel> make_model(gguf::File file, ModelOptions opt);

}  // namespace forge
