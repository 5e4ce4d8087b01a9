#pragma once
// The generation loop: prefill the prompt as one batch, then sample and decode token by token,
// streaming text as it is produced. Text that might be the start of a stop string is held back until
// it is known not to be one, so a stop string never reaches the caller.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forge/sample/sampler.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge {

struct GenerationParams {
    int max_tokens = 128;
    SamplerParams sampling{};
    std::vector<std::string> stop;  // stop strings (not included in the output)
    std::function<bool()> abort;    // asked before each token: true ends generation as `cancelled`
};

enum class FinishReason { length, eos, stop, cancelled };

constexpr std::string_view finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::length: return "length";
        case FinishReason::eos: return "stop";  // OpenAI calls a natural end "stop" too
        case FinishReason::stop: return "stop";
        case FinishReason::cancelled: return "cancelled";
    }
    return "?";
}

struct GenerationResult {
    std::vector<std::int32_t> tokens;  // generated ids (EOS excluded)
    std::string text;
    FinishReason finish = FinishReason::length;
    int prompt_tokens = 0;
    double prefill_seconds = 0;
    double decode_seconds = 0;
};

// `on_text` receives each piece of text as soon as it is final; returning false cancels generation.
// The model must be at position 0 (call reset()).
template <class M>
GenerationResult generate(M& model, const Tokenizer& tok, std::span<const std::int32_t> prompt,
                          const GenerationParams& params, const std::function<bool(std::string_view)>& on_text = {}) {
    using clock = std::chrono::steady_clock;
    if (prompt.empty()) throw Error("the prompt is empty: there is nothing to continue (add BOS)");
    if (prompt.size() > std::size_t(model.context()))
        throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                    std::to_string(model.context()));
    if (params.max_tokens < 0) throw Error("max_tokens must be >= 0");
    for (const auto& s : params.stop)
        if (s.empty()) throw Error("stop strings must not be empty");

    GenerationResult r;
    r.prompt_tokens = int(prompt.size());
    Sampler sampler(params.sampling);
    for (const auto t : prompt) sampler.accept(t);

    const auto t0 = clock::now();
    std::span<const float> logits = model.prefill(prompt);
    const auto t1 = clock::now();
    r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

    StreamDecoder decoder(tok, prompt.size() == 1 && prompt[0] == tok.bos());
    std::string held;  // decoded text not yet given to the caller

    // Emits `held` up to `end` bytes; false if the caller cancelled.
    const auto emit = [&](std::size_t end) {
        if (end == 0) return true;
        const std::string piece = held.substr(0, end);
        held.erase(0, end);
        r.text += piece;
        return !on_text || on_text(piece);
    };
    // Keeps back the shortest tail that could still grow into a stop string; trims at a complete one.
    const auto settle = [&](bool final) -> bool {
        for (const auto& s : params.stop) {
            if (const auto at = held.find(s); at != std::string::npos) {
                held.resize(at);
                emit(held.size());
                r.finish = FinishReason::stop;
                return false;
            }
        }
        std::size_t keep = 0;
        if (!final)
            for (const auto& s : params.stop)
                for (std::size_t n = std::min(s.size() - 1, held.size()); n > keep; --n)
                    if (held.compare(held.size() - n, n, s, 0, n) == 0) {
                        keep = n;
                        break;
                    }
        // Never split a UTF-8 character between pieces: back up to a character boundary.
        std::size_t end = held.size() - keep;
        while (end > 0 && end < held.size() && (static_cast<unsigned char>(held[end]) & 0xC0) == 0x80) --end;
        if (!emit(end)) {
            r.finish = FinishReason::cancelled;
            return false;
        }
        return true;
    };

    while (int(r.tokens.size()) < params.max_tokens) {
        if (params.abort && params.abort()) {
            r.finish = FinishReason::cancelled;
            break;
        }
        const std::int32_t next = sampler.sample(logits);
        if (tok.is_eog(next)) {
            r.finish = FinishReason::eos;
            break;
        }
        r.tokens.push_back(next);
        sampler.accept(next);
        held += decoder.push(next);
        if (!settle(false)) break;
        if (int(r.tokens.size()) == params.max_tokens) break;
        if (model.position() >= model.context()) break;  // context full: finish with "length"
        logits = model.decode(next);
    }
    if (r.finish == FinishReason::length || r.finish == FinishReason::eos) {
        held += decoder.flush();
        settle(true);
    }
    r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return r;
}

}  // namespace forge
