// forge tokenize: token ids for a text, or for every case of a tokenizer case file, using a model's vocabulary.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "forge/core/error.hpp"
#include "forge/tokenizer/case_file.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge::cli {

namespace {

constexpr const char* kUsage =
    "usage: forge tokenize -m MODEL.gguf [--no-bos] [--special] TEXT\n"
    "       forge tokenize -m MODEL.gguf --file CASES\n"
    "  TEXT          prints its token ids on one line, after BOS when the model adds one (not with --no-bos)\n"
    "  --special     special tokens written in TEXT (e.g. <|im_start|>) become their ids\n"
    "  --file CASES  one line per case of a __ggml_vocab_test__-separated file: each id after a space, no BOS\n";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open '" + path + "'");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int tokenize(int argc, char** argv) {
    std::string model, file;
    std::optional<std::string> text;
    bool bos = true, special = false, options_done = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (!options_done && arg == "--") {
            options_done = true;
            continue;
        }
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw Error(std::string(arg) + " needs a value");
            return argv[++i];
        };
        if (options_done) {
            if (text) throw Error("more than one TEXT given (quote the text; forge tokenize -h for usage)");
            text = std::string(arg);
        } else if (arg == "-h" || arg == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (arg == "-m" || arg == "--model") {
            model = value();
        } else if (arg == "--file") {
            file = value();
        } else if (arg == "--no-bos") {
            bos = false;
        } else if (arg == "--special") {
            special = true;
        } else if (!options_done && arg.size() > 1 && arg[0] == '-') {
            throw Error("unknown option '" + std::string(arg) + "' (forge tokenize -h for usage)");
        } else if (text) {
            throw Error("more than one TEXT given (quote the text; forge tokenize -h for usage)");
        } else {
            text = std::string(arg);
        }
    }
    if (model.empty()) throw Error("no model given (-m MODEL.gguf)");
    if (file.empty() == !text) throw Error("give either TEXT or --file CASES (forge tokenize -h for usage)");

    const Tokenizer tok = Tokenizer::open(model);
    std::string out;
    if (text) {
        const std::vector<std::int32_t> ids = tok.encode(*text, bos && tok.add_bos(), special);
        for (std::size_t i = 0; i < ids.size(); ++i) out.append(i ? " " : "").append(std::to_string(ids[i]));
        out += '\n';
    } else {
        for (const std::string& c : tokenizer::parse_case_file(read_file(file))) {
            for (const std::int32_t id : tok.encode(c, false)) out.append(" ").append(std::to_string(id));
            out += '\n';
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace forge::cli
