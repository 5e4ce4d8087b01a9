#pragma once
// The generation loop: feed the prompt where the model's sequence stands, then sample and feed token by
// token, handing each token to the caller as an event (its id, text, log-probability and, on request,
// the most likely alternatives). Text that might be the start of a stop string is held back until it is
// known not to be one, so a stop string never reaches the caller. With a grammar constraint, only tokens
// that keep the text a prefix of the grammar's language are sampled (the others' logits become -inf in a
// copy; the token's logprob stays the model's own), and generation ends as `eos` once the text is complete
// and nothing may follow.
//
// Generation continues the model's sequence: a call after another (with more prompt, or none) goes on
// from the last token fed, as one long generation would. Every generated token is fed, so afterwards
// the model's tokens() are what came before, the prompt and the result's tokens; only the last token of
// a generation that was cancelled or filled the context is not fed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/printable.hpp"
#include "forge/grammar/token_mask.hpp"
#include "forge/model/any_model.hpp"
#include "forge/sample/sampler.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge {

// The most alternatives a token event carries (OpenAI's top_logprobs limit).
inline constexpr int kMaxTopLogprobs = 20;

struct TokenLogprob {
    std::int32_t id;
    float logprob;
};

struct GenerationParams {
    int max_tokens = 256;
    SamplerParams sampling{};
    std::vector<std::string> stop{};        // stop strings (not included in the output)
    std::vector<std::int32_t> stop_tokens{};  // ids that end generation, beside those the vocabulary marks
    int top_logprobs = 0;                   // alternatives per token event, 0 to kMaxTopLogprobs
    AbortCheck abort{};                     // asked before each token and between layers: true ends generation as cancelled
    // The output must match this grammar (generation advances a copy; see grammar/token_mask.hpp).
    std::optional<grammar::TokenConstraint> constraint{};
};

enum class FinishReason {
    length,     // max_tokens generated, or the context is full
    eos,        // an end-of-generation token: one the vocabulary marks, its BOS, or one of stop_tokens; or the
                // constraint's grammar is complete and allows nothing more
    stop,       // a stop string
    cancelled,  // `abort` said stop, or the event callback returned false
};

constexpr std::string_view finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::length: return "length";
        case FinishReason::eos: return "stop";  // OpenAI calls a natural end "stop" too
        case FinishReason::stop: return "stop";
        case FinishReason::cancelled: return "cancelled";
    }
    return "?";
}

// One generated token, as the callback sees it (the views are valid during the call).
struct TokenEvent {
    std::int32_t id;         // tokenizer::kNoToken on a generation's last event when it only releases held text
    std::string_view piece;  // the token's own text (the bytes of an unfinished character come with the token finishing it)
    std::string_view text;   // output that became final with this token: what to print (stop strings never appear)
    float logprob;           // log-softmax of the model's logits at temperature 1, before any sampling filter
    std::span<const TokenLogprob> top;  // the top_logprobs most likely tokens, most likely first
};

// Returning false ends generation at once, as cancelled.
using TokenCallback = std::function<bool(const TokenEvent&)>;

struct GenerationResult {
    std::vector<std::int32_t> tokens;  // generated ids (the end-of-generation token excluded)
    std::vector<float> logprobs;       // each token's log-probability, as in its event
    std::vector<std::vector<TokenLogprob>> top_logprobs;  // each token's alternatives (when asked for)
    std::string text;
    FinishReason finish = FinishReason::length;
    int prompt_tokens = 0;  // tokens fed for the prompt by this call
    std::uint64_t seed = 0;  // the sampler's seed (the random one chosen when none was given)
    double prefill_seconds = 0;
    double decode_seconds = 0;
};

namespace detail {

// log-softmax at temperature 1 of `logits` at `id`, and the `top` most likely tokens into `out`; summed
// in sample_categorical's order, so the number is the one a draw on the device reports.
inline float token_logprob(std::span<const float> logits, std::int32_t id, int top, std::vector<TokenLogprob>& out,
                           std::vector<std::int32_t>& order) {
    float max = -INFINITY;
    for (const float l : logits) max = std::fmax(max, l);
    const float log_sum = log_normaliser(logits, max);
    out.clear();
    if (top > 0) {
        order.resize(logits.size());
        std::iota(order.begin(), order.end(), 0);
        const auto k = std::ptrdiff_t(std::min<std::size_t>(std::size_t(top), logits.size()));
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::int32_t a, std::int32_t b) {
            return logits[std::size_t(a)] > logits[std::size_t(b)] || (logits[std::size_t(a)] == logits[std::size_t(b)] && a < b);
        });
        for (std::ptrdiff_t i = 0; i < k; ++i) out.push_back({order[std::size_t(i)], logits[std::size_t(order[std::size_t(i)])] - log_sum});
    }
    return logits[std::size_t(id)] - log_sum;
}

}  // namespace detail

// Feeds `prompt` (may be empty when the model has fed tokens: generation then continues from the last)
// and generates, calling `on_token` for every token.
inline GenerationResult generate(AnyModel& model, const Tokenizer& tok, std::span<const std::int32_t> prompt,
                                 const GenerationParams& params, const TokenCallback& on_token = {}) {
    using clock = std::chrono::steady_clock;
    if (params.max_tokens < 0) throw Error("max_tokens must be >= 0, not " + std::to_string(params.max_tokens));
    if (params.top_logprobs < 0 || params.top_logprobs > kMaxTopLogprobs)
        throw Error("top_logprobs must be between 0 and " + std::to_string(kMaxTopLogprobs) + ", not " + std::to_string(params.top_logprobs));
    for (const auto& s : params.stop)
        if (s.empty()) throw Error("stop strings must not be empty");
    if (prompt.empty() && model.logits().empty())
        throw Error(model.position() == 0 ? "the prompt is empty: there is nothing to continue (add BOS)"
                                          : "the prompt is empty and the model's last token was truncated away: feed at least one token");
    if (prompt.size() > std::size_t(model.context() - model.position()))
        throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " + std::to_string(model.context()) +
                    (model.position() > 0 ? " and " + std::to_string(model.position()) + " are in use" : std::string()));
    const auto ends_generation = [&](std::int32_t id) {
        return tok.is_eog(id) || id == tok.bos() || std::find(params.stop_tokens.begin(), params.stop_tokens.end(), id) != params.stop_tokens.end();
    };

    GenerationResult r;
    r.prompt_tokens = int(prompt.size());
    Sampler sampler(params.sampling);
    r.seed = sampler.seed();
    const auto history = model.tokens();
    for (const auto t : history) sampler.accept(t);
    for (const auto t : prompt) sampler.accept(t);

    // A plain draw (temperature or greedy, nothing that needs the logits on the host) on a model that
    // samples on its device: the logits stay there, and each token costs the copy of one (id, logprob).
    std::span<const float> logits;  // the host's copy of the last logits (unused on the device path)
    const bool on_device = model.samples_on_device() && sampler.plain() && !params.constraint && params.top_logprobs == 0;
    const auto feed = [&](std::span<const std::int32_t> tokens) {
        if (on_device) model.advance(tokens, params.abort);
        else logits = model.prefill(tokens, nullptr, params.abort);
    };

    const auto t0 = clock::now();
    try {
        if (!prompt.empty()) feed(prompt);
        else if (!on_device) logits = model.logits();
    } catch (const Cancelled&) {
        r.finish = FinishReason::cancelled;
        r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
        return r;
    }
    const auto t1 = clock::now();
    r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

    const bool after_bos_only = model.position() == 1 && model.tokens()[0] == tok.bos();
    StreamDecoder decoder(tok, after_bos_only);
    std::string held;  // decoded text not yet given to the caller
    std::vector<TokenLogprob> top;
    std::vector<std::int32_t> order;
    std::optional<grammar::TokenConstraint> constraint = params.constraint;
    std::vector<float> allowed_logits;

    // How much of `held` is final: all of it at the end; else all but the longest tail that could still
    // grow into a stop string, backed up to a UTF-8 character boundary. A complete stop string trims
    // `held` there and finishes generation.
    const auto settle = [&](bool final) -> std::size_t {
        for (const auto& s : params.stop) {
            if (const auto at = held.find(s); at != std::string::npos) {
                held.resize(at);
                r.finish = FinishReason::stop;
                return at;
            }
        }
        if (final) return held.size();
        std::size_t keep = 0;
        for (const auto& s : params.stop)
            for (std::size_t n = std::min(s.size() - 1, held.size()); n > keep; --n)
                if (held.compare(held.size() - n, n, s, 0, n) == 0) {
                    keep = n;
                    break;
                }
        std::size_t end = held.size() - keep;
        while (end > 0 && end < held.size() && (static_cast<unsigned char>(held[end]) & 0xC0) == 0x80) --end;
        return end;
    };
    // Hands the event to the caller with the first `end` bytes of `held` released; false if it cancelled.
    const auto emit = [&](std::int32_t id, std::string_view piece, float logprob, std::size_t end) {
        const std::string released = held.substr(0, end);
        held.erase(0, end);
        r.text += released;
        return !on_token || on_token(TokenEvent{id, piece, released, logprob, top});
    };

    for (;;) {
        if (constraint && constraint->complete() && !constraint->can_continue()) {
            r.finish = FinishReason::eos;
            break;
        }
        if (int(r.tokens.size()) == params.max_tokens) break;
        if (params.abort && params.abort()) {
            r.finish = FinishReason::cancelled;
            break;
        }
        std::int32_t next;
        float logprob;
        if (on_device) {
            const auto [temperature, u] = sampler.plain_draw();
            const SampledToken s = model.sample(temperature, u);
            next = s.id;
            logprob = s.logprob;
        } else {
            std::span<const float> sample_from = logits;
            if (constraint) {
                allowed_logits.assign(logits.begin(), logits.end());
                if (constraint->mask(allowed_logits, params.stop_tokens) == 0) {
                    // Complete, but the tokens that would end it are not in the vocabulary: end here.
                    if (constraint->complete()) {
                        r.finish = FinishReason::eos;
                        break;
                    }
                    throw Error("grammar: no token of the vocabulary can continue the text " + quoted_text(r.text + held));
                }
                sample_from = allowed_logits;
            }
            next = sampler.sample(sample_from);
            logprob = detail::token_logprob(logits, next, params.top_logprobs, top, order);
        }
        if (ends_generation(next)) {
            r.finish = FinishReason::eos;
            break;
        }
        if (constraint) constraint->accept(next);
        r.tokens.push_back(next);
        r.logprobs.push_back(logprob);
        if (params.top_logprobs > 0) r.top_logprobs.push_back(top);
        sampler.accept(next);
        const std::string piece = decoder.push(next);
        held += piece;
        if (!emit(next, piece, logprob, settle(false))) {
            r.finish = FinishReason::cancelled;
            break;
        }
        if (model.position() >= model.context()) break;  // the context is full: finish with "length"
        try {
            feed(std::span(&next, 1));
        } catch (const Cancelled&) {
            r.finish = FinishReason::cancelled;
            break;
        }
        if (r.finish == FinishReason::stop) break;
    }
    if (r.finish == FinishReason::length || r.finish == FinishReason::eos) {
        held += decoder.flush();
        top.clear();
        if (const std::size_t end = settle(true); end > 0) emit(tokenizer::kNoToken, {}, 0.0f, end);
    }
    r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return r;
}

}  // namespace forge
