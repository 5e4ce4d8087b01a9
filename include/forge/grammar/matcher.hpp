#pragma once
// The recogniser of a Grammar: feed it bytes, ask whether the text so far is a whole match (complete())
// and whether any byte may follow (can_continue()). It keeps the set of parse stacks that are still
// alive; a stack is a chain of frames (shared between stacks, so branching copies nothing) whose top
// is the next element to match. A rule at the top is expanded only when the next byte is known, and
// only into the alternatives that can start with that byte (or match nothing), so a byte costs the
// paths it can take, not every path of the grammar. The token mask (token_mask.hpp) uses step() and
// rewind() to try many continuations from one state.
//
// Bounds keep a hostile grammar from hanging or exhausting memory: more than `max_stacks` live stacks,
// or more than `max_steps` expansions for one byte, is a forge::Error (the grammar is too ambiguous);
// a stack deeper than `max_depth` frames is dropped, so text nested deeper than that is not accepted.
#include <cstdint>
#include <memory>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/grammar/grammar.hpp"

namespace forge::grammar {

struct MatchLimits {
    std::size_t max_stacks = 1024;
    std::uint32_t max_depth = 4096;
    std::size_t max_steps = std::size_t(1) << 16;
};

inline constexpr std::uint32_t kNoFrame = UINT32_MAX;

// A set of parse stacks, by their top frames.
struct Heads {
    std::vector<std::uint32_t> tops;

    bool dead() const { return tops.empty(); }
};

class Matcher {
public:
    explicit Matcher(std::shared_ptr<const Grammar> grammar, MatchLimits limits = {}) : g_(std::move(grammar)), limits_(limits) {
        if (!g_) throw Error("grammar: the matcher needs a grammar");
        for (const std::uint32_t alt : g_->alternatives(g_->root())) add_top(alt, kNoFrame, heads_);
        settle();
    }

    const Grammar& grammar() const { return *g_; }
    const Heads& heads() const { return heads_; }
    // The text fed so far matches the whole grammar.
    bool complete() const { return complete_; }
    // Some byte may follow the text fed so far.
    bool can_continue() const { return can_continue_; }

    // Feeds `bytes`; when they can't continue the text, returns false and leaves the state as it was.
    bool feed(std::string_view bytes) {
        Heads cur = heads_;
        if (!run(cur, bytes)) return false;
        heads_ = std::move(cur);
        compact();
        settle();
        return true;
    }
    // Whether `bytes` would continue the text (the state is unchanged either way).
    bool accepts(std::string_view bytes) {
        const std::size_t start = mark();
        Heads cur = heads_;
        const bool ok = run(cur, bytes);
        rewind(start);
        return ok;
    }

    // The stacks of `from` that can take byte `b`, advanced past it, into `to`. New frames go at the
    // end of the frame store: rewind(mark()) taken before drops them again.
    void step(const Heads& from, unsigned b, Heads& to) {
        to.tops.clear();
        steps_ = 0;
        for (const std::uint32_t f : from.tops) advance(frames_[f].pos, frames_[f].parent, b, to);
    }
    // The current stacks' element positions, top to bottom, stack after stack: equal signatures
    // mean equal states (what may follow is the same).
    void signature(std::vector<std::uint32_t>& out) const {
        out.clear();
        for (const std::uint32_t top : heads_.tops) {
            for (std::uint32_t f = top; f != kNoFrame; f = frames_[f].parent) out.push_back(frames_[f].pos);
            out.push_back(kNoFrame);
        }
    }
    std::size_t mark() const { return frames_.size(); }
    void rewind(std::size_t mark) { frames_.resize(mark); }

private:
    struct Frame {
        std::uint32_t pos;     // the next element to match
        std::uint32_t parent;  // the frame to continue with when this one's alternative ends
        std::uint32_t depth;
    };

    std::uint32_t push(std::uint32_t pos, std::uint32_t parent) {
        const std::uint32_t depth = parent == kNoFrame ? 1 : frames_[parent].depth + 1;
        frames_.push_back({pos, parent, depth});
        return std::uint32_t(frames_.size() - 1);
    }

    // Steps `cur` through `bytes`; false (frames dropped) if a byte can't continue.
    bool run(Heads& cur, std::string_view bytes) {
        const std::size_t start = mark();
        Heads next;
        for (const char c : bytes) {
            step(cur, static_cast<unsigned char>(c), next);
            if (next.dead()) {
                rewind(start);
                return false;
            }
            std::swap(cur, next);
        }
        return true;
    }

    // Takes byte `b` on the stack "element `pos`, then frame `parent`", into `to`: ends of
    // alternatives return to their parent, rules open the alternatives that can take `b`.
    void advance(std::uint32_t pos, std::uint32_t parent, unsigned b, Heads& to) {
        work_.clear();
        work_.emplace_back(pos, parent);
        while (!work_.empty()) {
            std::tie(pos, parent) = work_.back();
            work_.pop_back();
            if (++steps_ > limits_.max_steps)
                throw Error("grammar: more than " + std::to_string(limits_.max_steps) + " expansions for one byte (the grammar is too ambiguous)");
            while (g_->element(pos).kind == Element::end && parent != kNoFrame) {
                pos = frames_[parent].pos;
                parent = frames_[parent].parent;
            }
            const Element& e = g_->element(pos);
            if (e.kind == Element::end) continue;  // the whole text ends here: no byte may follow
            if (e.kind == Element::bytes) {
                if (g_->byte_set(e.index).has(b)) add_top(pos + 1, parent, to);
                continue;
            }
            if (!g_->first(e.index).has(b) && !g_->nullable(e.index)) continue;
            // Continue after the rule once one of its alternatives ends; in the last position of an
            // alternative, with the parent directly, so right recursion does not deepen the stack.
            const std::uint32_t cont = g_->element(pos + 1).kind == Element::end ? parent : push(pos + 1, parent);
            if (cont != kNoFrame && frames_[cont].depth >= limits_.max_depth) continue;
            const auto alts = g_->alternatives(e.index);
            const std::uint32_t first_alt = g_->alt_begin(e.index);
            for (std::uint32_t i = 0; i < alts.size(); ++i)
                if (g_->alt_first(first_alt + i).has(b) || g_->alt_nullable(first_alt + i)) work_.emplace_back(alts[i], cont);
        }
    }

    void add_top(std::uint32_t pos, std::uint32_t parent, Heads& to) {
        for (const std::uint32_t t : to.tops)
            if (frames_[t].pos == pos && frames_[t].parent == parent) return;
        if (to.tops.size() >= limits_.max_stacks)
            throw Error("grammar: more than " + std::to_string(limits_.max_stacks) + " parse stacks at once (the grammar is too ambiguous)");
        to.tops.push_back(push(pos, parent));
    }

    // complete_ and can_continue_ for the current stacks: walks each stack over what may match nothing.
    void settle() {
        complete_ = can_continue_ = false;
        for (const std::uint32_t top : heads_.tops) {
            std::uint32_t pos = frames_[top].pos, parent = frames_[top].parent;
            for (;;) {
                const Element& e = g_->element(pos);
                if (e.kind == Element::end) {
                    if (parent == kNoFrame) {
                        complete_ = true;
                        break;
                    }
                    pos = frames_[parent].pos;
                    parent = frames_[parent].parent;
                    continue;
                }
                if (e.kind == Element::bytes || !g_->first(e.index).empty()) can_continue_ = true;
                if (e.kind == Element::bytes || !g_->nullable(e.index)) break;
                ++pos;
            }
        }
    }

    // Keeps only the frames the current stacks use.
    void compact() {
        std::vector<Frame> kept;
        std::vector<std::uint32_t> map(frames_.size(), kNoFrame), chain;
        for (std::uint32_t& top : heads_.tops) {
            chain.clear();
            for (std::uint32_t f = top; f != kNoFrame && map[f] == kNoFrame; f = frames_[f].parent) chain.push_back(f);
            for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
                const Frame fr = frames_[*it];
                map[*it] = std::uint32_t(kept.size());
                kept.push_back({fr.pos, fr.parent == kNoFrame ? kNoFrame : map[fr.parent], fr.depth});
            }
            top = map[top];
        }
        frames_ = std::move(kept);
    }

    std::shared_ptr<const Grammar> g_;
    MatchLimits limits_;
    std::vector<Frame> frames_;
    Heads heads_;
    bool complete_ = false, can_continue_ = false;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> work_;  // (pos, parent) still to take the byte
    std::size_t steps_ = 0;
};

}  // namespace forge::grammar
