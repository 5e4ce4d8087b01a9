#pragma once
// Model<Traits> behind the AnyModel interface. Including this header instantiates the kernels for
// every traits type make_model is called with; FORGE_INSTANTIATE_MODEL(T) does it for one type in
// its own translation unit.
#include "forge/model/any_model.hpp"
#include "forge/model/model.hpp"
#include "forge/models/catalog.hpp"

namespace forge {

template <class Traits>
class ModelAdapter final : public AnyModel {
public:
    ModelAdapter(gguf::File file, ModelOptions opt) : m_(std::move(file), opt) {}
    std::span<const float> prefill(std::span<const std::int32_t> tokens, float* all_logits) override {
        return m_.prefill(tokens, all_logits);
    }
    void reset() override { m_.reset(); }
    int position() const override { return m_.position(); }
    int context() const override { return m_.context(); }
    int threads() const override { return m_.threads(); }
    std::size_t kv_cache_bytes() const override { return m_.kv_cache_bytes(); }
    const ModelShape& shape() const override { return m_.shape(); }
    const gguf::File& file() const override { return m_.file(); }
    // A runtime shape equal to compiled traits of the catalog, running the kernels registered for its
    // row lengths, is what those traits compile to: it carries their name.
    std::string_view compiled_name() const override {
        if constexpr (Model<Traits>::kCompiled) {
            return Traits::name;
        } else {
            const models::NamedShape* m = models::find_compiled(m_.shape());
            return m && m_.row_length_kernels() ? m->name : std::string_view{};
        }
    }

private:
    Model<Traits> m_;
};

template <class Traits>
std::unique_ptr<AnyModel> make_model(gguf::File file, ModelOptions opt) {
    return std::make_unique<ModelAdapter<Traits>>(std::move(file), opt);
}

}  // namespace forge

#define FORGE_INSTANTIATE_MODEL(...) \
    template std::unique_ptr<forge::AnyModel> forge::make_model<__VA_ARGS__>(forge::gguf::File, forge::ModelOptions)
