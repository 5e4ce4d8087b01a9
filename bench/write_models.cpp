// Writes the synthetic GGUFs that the comparison scripts measure (the zoo's shapes of docs/performance.md,
// seeded, as bench_model writes them on first use), for machines without Google Benchmark.
//   write_models DIR [REGEX]   the models whose names match REGEX (all by default); existing files are kept
#include <cstdio>
#include <exception>
#include <regex>
#include <string>

#include "forge/gguf/synthetic_model.hpp"
#include "forge/models/llama.hpp"
#include "forge/models/qwen2_5.hpp"
#include "forge/models/smollm2.hpp"

namespace {

template <class... Traits>
int write_each(const std::string& dir, const std::regex& only) {
    int written = 0;
    const auto one = [&]<class T>() {
        const std::string name(T::name);
        if (!std::regex_search(name, only)) return;
        forge::gguf::write_synthetic_model(dir + "/" + name + ".gguf", T::shape);
        std::printf("%s/%s.gguf\n", dir.c_str(), name.c_str());
        ++written;
    };
    (one.template operator()<Traits>(), ...);
    return written;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s DIR [REGEX]\n", argv[0]);
        return 2;
    }
    try {
        using namespace forge;
        using enum DType;
        const int n = write_each<models::SmolLM2_135M<Q8_0>, models::SmolLM2_135M<Q4_0>, models::Qwen2_5_0_5B<Q8_0>,
                                 models::TinyLlama_1_1B<Q4_0>, models::TinyLlama_1_1B<Q8_0>, models::Llama3_1_8B<Q4_0>>(
            argv[1], std::regex(argc == 3 ? argv[2] : "."));
        if (n == 0) throw Error(std::string("no model's name matches '") + (argc == 3 ? argv[2] : ".") + "'");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}
