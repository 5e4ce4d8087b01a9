#pragma once
// Model<Traits> behind the AnyModel interface. Calling make_model<T> (open_model does) instantiates the
// CPU kernels for T there; FORGE_INSTANTIATE_MODEL(T) does it in a translation unit of its own, and
// FORGE_EXTERN_MODEL(T) tells other translation units that it is done.
#include <vector>

#include "forge/model/any_model.hpp"
#include "forge/model/model.hpp"
#include "forge/models/catalog.hpp"

namespace forge {

template <class Traits>
class ModelAdapter final : public AnyModel {
public:
    ModelAdapter(gguf::File file, ModelOptions opt) : m_(std::move(file), opt) {}
    explicit ModelAdapter(Model<Traits> m) : m_(std::move(m)) {}
    bool has_sequences() const override { return true; }
    std::unique_ptr<AnyModel> new_sequence() const override { return std::make_unique<ModelAdapter>(m_.new_sequence()); }
    std::span<const float> logits() const override { return m_.logits(); }
    int position() const override { return m_.position(); }
    int context() const override { return m_.context(); }
    int threads() const override { return m_.threads(); }
    std::size_t kv_cache_bytes() const override { return m_.kv_cache_bytes(); }
    const ModelShape& shape() const override { return m_.shape(); }
    const gguf::File& file() const override { return m_.file(); }
    std::string_view kernels() const override { return m_.kernels(); }
    bool row_length_kernels() const override { return m_.row_length_kernels(); }
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
    std::span<const float> feed(std::span<const std::int32_t> tokens, float* all_logits, const AbortCheck& abort) override {
        return m_.prefill(tokens, all_logits, abort);
    }
    // Sequences of this model share passes; a feed naming a model of another kind goes one by one.
    void feed_sequences(std::span<const Feed> feeds, const AbortCheck& abort) override {
        std::vector<typename Model<Traits>::Feed> ours;
        for (const Feed& f : feeds) {
            auto* m = dynamic_cast<ModelAdapter*>(f.model);
            if (!m) return AnyModel::feed_sequences(feeds, abort);
            ours.push_back({&m->m_, f.tokens});
        }
        Model<Traits>::feed_together(ours, abort);
    }
    void cut(int n) override { m_.truncate(n); }
    void copy_prefix(AnyModel& to, int n) const override {
        auto* other = dynamic_cast<ModelAdapter*>(&to);
        if (!other) throw Error("cannot copy a prefix from a CPU model to a model on another backend or of other traits");
        m_.copy_prefix_to(other->m_, n);
    }

    Model<Traits> m_;
};

template <class Traits>
std::unique_ptr<AnyModel> make_model(gguf::File file, ModelOptions opt) {
    return std::make_unique<ModelAdapter<Traits>>(std::move(file), opt);
}

}  // namespace forge
