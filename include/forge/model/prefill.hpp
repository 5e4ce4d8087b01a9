#pragma once
// What every forward pass does around its kernels, written once for the CPU and the GPU path: check the
// tokens against the context and the vocabulary, feed them in batches, stop when asked to, and refuse
// non-finite logits.
//
// Non-finite logits are an error, not output. A file can parse, match its shape and still hold weights
// that compute NaN or infinity (F16 bytes flipped to NaN, a norm of 1e38): sampling from such logits
// would give silent garbage.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "forge/core/error.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge {

// Asked before each batch and each layer of a forward pass, on the computing thread: true stops the work
// with forge::Cancelled. Another thread cancels by setting an atomic flag the check reads.
using AbortCheck = std::function<bool()>;

// Work stopped by an AbortCheck. The model keeps every batch completed before the check said stop: its
// position is where the first unfinished batch would have started.
class Cancelled : public Error {
public:
    explicit Cancelled(int position) : Error("cancelled at position " + std::to_string(position)), position_(position) {}
    int position() const { return position_; }

private:
    int position_;
};

// Throws Cancelled when `abort` says stop.
inline void check_abort(const AbortCheck& abort, int position) {
    if (abort && abort()) throw Cancelled(position);
}

// `logits` holds rows of `vocab` values for the tokens at positions first_position, first_position+1, ...
inline void require_finite_logits(std::span<const float> logits, std::size_t vocab, int first_position) {
    bool finite = true;
    for (const float x : logits) finite &= std::fabs(x) <= 3.40282347e+38f;  // false for NaN too; vectorises
    if (finite) return;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        if (std::isfinite(logits[i])) continue;
        throw Error("the model computed " + std::string(std::isnan(logits[i]) ? "NaN" : "infinite") + " logits (token " +
                    std::to_string(i % vocab) + " at position " + std::to_string(std::size_t(first_position) + i / vocab) +
                    "): the file's weights or metadata hold values that are not numbers or overflow");
    }
}

// `tokens` can be fed to a sequence at `position` of a `context`-long cache: at least one, all in the
// vocabulary, room for all.
inline void require_feedable(const ModelShape& s, int position, int context, std::span<const std::int32_t> tokens) {
    if (tokens.empty()) throw Error("prefill needs at least one token");
    if (tokens.size() > std::size_t(context - position))
        throw Error("context is full: " + std::to_string(position) + " positions used + " + std::to_string(tokens.size()) +
                    " new tokens exceed the context of " + std::to_string(context));
    for (const auto t : tokens)
        if (t < 0 || t >= s.vocab)
            throw Error("token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(s.vocab) + ")");
}

// Feeds `tokens` at positions `position`.. through forward(tokens, n, all_logits_or_null) in batches of at
// most `max_batch`; `last_logits` is where forward leaves the last token's logits. With `all_logits`
// (tokens.size() x vocab floats) every token's logits are written there too. `abort` is asked before each
// batch (forward asks it between layers).
template <class Forward>
void prefill_in_batches(const ModelShape& s, int position, int context, int max_batch, std::span<const std::int32_t> tokens,
                        float* all_logits, std::span<const float> last_logits, const AbortCheck& abort, Forward&& forward) {
    require_feedable(s, position, context, tokens);
    const std::size_t V = std::size_t(s.vocab);
    for (std::size_t done = 0; done < tokens.size();) {
        const int n = int(std::min<std::size_t>(std::size_t(max_batch), tokens.size() - done));
        check_abort(abort, position + int(done));
        forward(tokens.data() + done, n, all_logits ? all_logits + done * V : nullptr);
        done += std::size_t(n);
    }
    if (all_logits) require_finite_logits({all_logits, tokens.size() * V}, V, position);
    else require_finite_logits(last_logits, V, position + int(tokens.size()) - 1);
}

}  // namespace forge
