// Writes the synthetic GGUFs that the comparison scripts measure (bench_shapes.hpp, as bench_model writes
// them on first use), for machines without Google Benchmark.
//   write_models DIR [REGEX]   the models whose names match REGEX (all by default); existing files are kept
#include <cstdio>
#include <exception>
#include <regex>
#include <string>

#include "bench_shapes.hpp"

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s DIR [REGEX]\n", argv[0]);
        return 2;
    }
    try {
        const std::string dir = argv[1], pattern = argc == 3 ? argv[2] : ".";
        const std::regex only(pattern);
        int written = 0;
        forge::bench::Shapes::each([&]<class T>() {
            if (!std::regex_search(std::string(T::name), only)) return;
            std::printf("%s\n", forge::bench::model_file<T>(dir).c_str());
            ++written;
        });
        if (written == 0) throw forge::Error("no model's name matches '" + pattern + "'");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}
