// forge quantize: converts a model GGUF (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1 or the K-quants) to Q8_0 or Q4_0
// weights, the types forge computes with.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "args.hpp"
#include "commands.hpp"
#include "forge/quant/quantize_file.hpp"

namespace forge::cli {
namespace {

constexpr const char* kUsage =
    "usage: forge quantize IN.gguf OUT.gguf q8_0|q4_0\n"
    "  matrices become Q8_0 or Q4_0, norms and biases F32; metadata and vocabulary are copied.\n"
    "  IN may hold F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K tensors.\n";

// A bar redrawn in place, only on a terminal: a log file would collect every redraw.
class ProgressBar {
public:
    ProgressBar() : enabled_(::isatty(STDERR_FILENO) == 1) {}
    void operator()(std::uint64_t done, std::uint64_t total) {
        if (!enabled_ || total == 0) return;
        const int percent = int(done * 100 / total);
        if (percent == last_) return;
        last_ = percent;
        constexpr int kWidth = 40;
        const int filled = percent * kWidth / 100;
        std::fprintf(stderr, "\r[%s%s] %3d%%", std::string(std::size_t(filled), '#').c_str(),
                     std::string(std::size_t(kWidth - filled), ' ').c_str(), percent);
        if (done == total) std::fputc('\n', stderr);
        std::fflush(stderr);
    }

private:
    bool enabled_;
    int last_ = -1;
};

}  // namespace

int quantize(int argc, char** argv) {
    const Args args(argc, argv, {{"--help", "-h", false}});
    if (args.has("--help")) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    const auto& pos = args.positional();
    if (pos.size() != 3) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const auto target = dtype_from_name(pos[2]);
    if (!target || (*target != DType::Q8_0 && *target != DType::Q4_0))
        throw Error("cannot quantize to '" + pos[2] + "': the target is q8_0 or q4_0");
    ProgressBar bar;
    const QuantizeSummary s =
        quantize_file(pos[0], pos[1], *target, [&](std::uint64_t done, std::uint64_t total) { bar(done, total); });
    std::printf("%s: %zu matrices quantized to %s, %zu vectors made F32, %zu tensors copied\n", pos[1].c_str(),
                s.requantized, std::string(dtype_name(*target)).c_str(), s.widened, s.copied);
    return 0;
}

}  // namespace forge::cli
