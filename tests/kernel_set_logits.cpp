// Built twice, for the native target and for none (tests/CMakeLists.txt): prints, for each model file
// given, the kernel set it ran (FORGE_CPU_KERNELS picks one) and a hash of the bits of every logit of a
// prefill and of the decode steps after it. The two builds must print the same lines for each set.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <forge/forge.hpp>

namespace {

std::uint64_t fnv1a(const std::vector<float>& v, std::uint64_t h = 1469598103934665603ull) {
    for (const float x : v) {
        std::uint32_t bits;
        std::memcpy(&bits, &x, sizeof bits);
        for (int b = 0; b < 4; ++b) h = (h ^ ((bits >> (8 * b)) & 0xffu)) * 1099511628211ull;
    }
    return h;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        for (int i = 1; i < argc; ++i) {
            forge::Model<forge::Dynamic> model(forge::gguf::File::open(argv[i]));
            const int vocab = model.shape().vocab;
            // 201 tokens: a batch long enough for the AMX tiles, ending in a partial group of 16 tokens;
            // prefill's four-token attention groups and their single-token tail; then decode.
            std::vector<std::int32_t> prompt;
            for (int t = 0; t < 201; ++t) prompt.push_back((t * 37 + 1) % vocab);
            std::vector<float> logits(prompt.size() * std::size_t(vocab));
            model.prefill(prompt, logits.data());
            std::uint64_t h = fnv1a(logits);
            for (int step = 0; step < 3; ++step) {
                const auto l = model.decode((step * 53 + 5) % vocab);
                h = fnv1a(std::vector<float>(l.begin(), l.end()), h);
            }
            std::printf("%s %.*s %016llx\n", argv[i], int(model.kernels().size()), model.kernels().data(), static_cast<unsigned long long>(h));
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kernel_set_logits: %s\n", e.what());
        return 1;
    }
}
