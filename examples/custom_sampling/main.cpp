// custom_sampling: a generation loop written by hand on the model itself (forge::AnyModel), and the
// per-token log-probabilities generate() reports.
//   usage: custom_sampling MODEL.gguf PROMPT [--ban WORD]... [--logprobs]
// Default: greedy decoding, with a logit bias of -inf on the first token of each banned word.
// --logprobs: generate() at temperature 0, printing each token's log-probability and three alternatives.
// Ctrl-C stops either, even in the middle of the prompt's prefill.
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <forge/forge.hpp>

namespace {

constexpr int kMaxTokens = 64;
std::atomic<bool> interrupted{false};  // set by SIGINT, read by the model between layers

// Greedy over the logits plus `bias`: the highest-scoring token.
std::int32_t pick(std::span<const float> logits, const std::vector<float>& bias) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
        if (logits[i] + bias[i] > logits[best] + bias[best]) best = i;
    return std::int32_t(best);
}

void print_logprobs(forge::LanguageModel& lm, const std::vector<std::int32_t>& prompt, const forge::AbortCheck& abort) {
    const forge::GenerationParams params{.max_tokens = kMaxTokens, .sampling = {.temperature = 0}, .top_logprobs = 3, .abort = abort};
    lm.complete(prompt, params, [&](const forge::TokenEvent& e) {
        if (e.id == forge::tokenizer::kNoToken) return true;  // the last event only releases held text
        std::printf("%-12s %8.4f  p=%.3f |", ("'" + std::string(e.piece) + "'").c_str(), double(e.logprob), std::exp(double(e.logprob)));
        for (const auto& alt : e.top) std::printf(" '%s' %.4f", lm.tokenizer().decode(alt.id).c_str(), double(alt.logprob));
        std::printf("\n");
        return true;
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL.gguf PROMPT [--ban WORD]... [--logprobs]\n", argv[0]);
        return 2;
    }
    std::signal(SIGINT, [](int) { interrupted = true; });
    const forge::AbortCheck abort = [] { return interrupted.load(); };
    try {
        auto lm = forge::LanguageModel::open(argv[1]);
        forge::AnyModel& model = lm.model();
        const forge::Tokenizer& tok = lm.tokenizer();
        const auto prompt = lm.tokenize(argv[2]);

        std::vector<float> bias(std::size_t(tok.vocab_size()), 0.0f);
        bool logprobs = false;
        for (int i = 3; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg == "--logprobs") logprobs = true;
            else if (arg == "--ban" && i + 1 < argc) bias[std::size_t(tok.encode(argv[++i], false).at(0))] = -INFINITY;
            else throw forge::Error("unknown argument '" + std::string(arg) + "'");
        }
        if (logprobs) {
            print_logprobs(lm, prompt, abort);
            return 0;
        }

        std::fputs(argv[2], stdout);
        forge::StreamDecoder text(tok);  // whole UTF-8 characters, however the tokens split them
        std::span<const float> logits = model.prefill(prompt, nullptr, abort);
        for (int n = 0; n < kMaxTokens; ++n) {
            const std::int32_t id = pick(logits, bias);
            if (tok.is_eog(id) || id == tok.bos()) break;  // the end of the text (stories end with BOS)
            std::fputs(text.push(id).c_str(), stdout);
            std::fflush(stdout);
            logits = model.decode(id, abort);
        }
        std::printf("%s\n", text.flush().c_str());
        return 0;
    } catch (const forge::Cancelled& e) {
        std::fprintf(stderr, "\n%s: interrupted (%s)\n", argv[0], e.what());
        return 130;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}
