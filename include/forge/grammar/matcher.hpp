#pragma once
// The recogniser of a Grammar: feed it bytes, ask whether the text so far is a whole match (complete())
// and whether any byte may follow (can_continue()). It keeps the set of parse stacks that are still
// alive, each stack pointing at the next byte class to match; a stack is a chain of frames, and frames
// are shared between stacks, so branching copies nothing. The token mask (token_mask.hpp) uses step()
// and rewind() to try many continuations from one state.
//
// Bounds keep a hostile grammar from hanging or exhausting memory: more than `max_stacks` live stacks,
// or more than `max_steps` expansions for one byte, is a forge::Error (the grammar is too ambiguous);
// a stack deeper than `max_depth` frames is dropped, so text nested deeper than that is not accepted.
#include <cstdint>
#include <memory>
#include <string_view>
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

// A set of parse stacks, by their top frames (each at a `bytes` element); `complete` when one of the
// alternatives has ended the root rule, i.e. the text so far matches the whole grammar.
struct Heads {
    std::vector<std::uint32_t> tops;
    bool complete = false;

    bool dead() const { return tops.empty() && !complete; }
};

class Matcher {
public:
    explicit Matcher(std::shared_ptr<const Grammar> grammar, MatchLimits limits = {}) : g_(std::move(grammar)), limits_(limits) {
        if (!g_) throw Error("grammar: the matcher needs a grammar");
        steps_ = 0;
        for (const std::uint32_t alt : g_->alternatives(g_->root())) expand(push(alt, kNoFrame), heads_);
    }

    const Grammar& grammar() const { return *g_; }
    const Heads& heads() const { return heads_; }
    // The text fed so far matches the whole grammar.
    bool complete() const { return heads_.complete; }
    // Some byte may follow the text fed so far.
    bool can_continue() const { return !heads_.tops.empty(); }

    // Feeds `bytes`; when they can't continue the text, returns false and leaves the state as it was.
    bool feed(std::string_view bytes) {
        const std::size_t start = mark();
        Heads cur = heads_, next;
        for (const char c : bytes) {
            step(cur, static_cast<unsigned char>(c), next);
            if (next.dead()) {
                rewind(start);
                return false;
            }
            std::swap(cur, next);
        }
        heads_ = std::move(cur);
        compact();
        return true;
    }
    // Whether `bytes` would continue the text (the state is unchanged either way).
    bool accepts(std::string_view bytes) {
        const std::size_t start = mark();
        Heads cur = heads_, next;
        bool ok = true;
        for (const char c : bytes) {
            step(cur, static_cast<unsigned char>(c), next);
            if (next.dead()) {
                ok = false;
                break;
            }
            std::swap(cur, next);
        }
        rewind(start);
        return ok;
    }

    // The stacks of `from` that match byte `b`, advanced past it, into `to`. New frames go at the end
    // of the frame store: rewind(mark()) taken before drops them again.
    void step(const Heads& from, unsigned b, Heads& to) {
        to.tops.clear();
        to.complete = false;
        steps_ = 0;
        for (const std::uint32_t f : from.tops) {
            const Frame top = frames_[f];
            if (!g_->byte_set(g_->element(top.pos).index).has(b)) continue;
            expand(push(top.pos + 1, top.parent), to);
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

    // Expands the stack at frame `f` until every resulting stack's top is a byte class (kept in `to`)
    // or the stack is empty (the root rule ended: `to` is complete).
    void expand(std::uint32_t f, Heads& to) {
        work_.clear();
        work_.push_back(f);
        while (!work_.empty()) {
            f = work_.back();
            work_.pop_back();
            if (++steps_ > limits_.max_steps)
                throw Error("grammar: more than " + std::to_string(limits_.max_steps) + " expansions for one byte (the grammar is too ambiguous)");
            while (f != kNoFrame && g_->element(frames_[f].pos).kind == Element::end) f = frames_[f].parent;
            if (f == kNoFrame) {
                to.complete = true;
                continue;
            }
            const Frame fr = frames_[f];
            const Element& e = g_->element(fr.pos);
            if (e.kind == Element::bytes) {
                add_top(f, to);
                continue;
            }
            // A rule: continue after it once one of its alternatives ends; in the last position of an
            // alternative, with this frame's parent directly, so right recursion does not deepen the stack.
            const std::uint32_t cont = g_->element(fr.pos + 1).kind == Element::end ? fr.parent : push(fr.pos + 1, fr.parent);
            if (cont != kNoFrame && frames_[cont].depth >= limits_.max_depth) continue;
            for (const std::uint32_t alt : g_->alternatives(e.index)) work_.push_back(push(alt, cont));
        }
    }

    void add_top(std::uint32_t f, Heads& to) {
        const Frame& fr = frames_[f];
        for (const std::uint32_t t : to.tops)
            if (frames_[t].pos == fr.pos && frames_[t].parent == fr.parent) return;
        if (to.tops.size() >= limits_.max_stacks)
            throw Error("grammar: more than " + std::to_string(limits_.max_stacks) + " parse stacks at once (the grammar is too ambiguous)");
        to.tops.push_back(f);
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
    std::vector<std::uint32_t> work_;
    std::size_t steps_ = 0;
};

}  // namespace forge::grammar
