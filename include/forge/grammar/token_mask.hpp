#pragma once
// Grammar-constrained sampling: which tokens of a vocabulary may come next so that the text stays a
// prefix of the grammar's language, and advancing on the token chosen.
//
// VocabTrie holds every token's bytes, as generation writes them (Tokenizer::decode(id)), in a byte
// trie built once per tokenizer and shared by every constraint: user-defined tokens such as Qwen's
// <tool_call> match their text literally; control tokens write nothing, so they are never allowed
// (the grammar would see text the output lacks). The mask is a walk of that trie from the matcher's state: a subtree is
// skipped as soon as its prefix can't continue the text, so a state like "inside a string" costs a walk
// of the vocabulary's shared prefixes, not a match per token. Tokens that end generation (the
// vocabulary's end-of-generation tokens and BOS) are allowed exactly when the grammar is complete;
// tokens with no bytes never are (they would make no progress).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/core/printable.hpp"
#include "forge/grammar/matcher.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge::grammar {

class VocabTrie {
public:
    explicit VocabTrie(const Tokenizer& tok) {
        const std::int32_t n = tok.vocab_size();
        bytes_.resize(std::size_t(n));
        std::vector<std::int32_t> order;
        for (std::int32_t id = 0; id < n; ++id) {
            if (tok.is_eog(id) || id == tok.bos()) {
                ends_.push_back(id);
                continue;
            }
            bytes_[std::size_t(id)] = tok.decode(id);
            if (!bytes_[std::size_t(id)].empty()) order.push_back(id);
        }
        std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return bytes_[std::size_t(a)] < bytes_[std::size_t(b)]; });
        // Nodes in preorder: a node's subtree is the nodes up to its `end`. Sorted texts visit the
        // trie's prefixes in exactly that order, so one pass with the current path builds it.
        nodes_.push_back({0, 0, 0, 0});
        std::vector<std::uint32_t> path{0};
        const std::string* prev = nullptr;
        for (const std::int32_t id : order) {
            const std::string& s = bytes_[std::size_t(id)];
            std::size_t common = 0;
            if (prev)
                while (common < prev->size() && common < s.size() && (*prev)[common] == s[common]) ++common;
            while (path.size() > common + 1) {
                nodes_[path.back()].end = std::uint32_t(nodes_.size());
                path.pop_back();
            }
            for (std::size_t k = common; k < s.size(); ++k) {
                path.push_back(std::uint32_t(nodes_.size()));
                nodes_.push_back({static_cast<unsigned char>(s[k]), 0, std::uint32_t(ids_.size()), std::uint32_t(ids_.size())});
            }
            ids_.push_back(id);
            nodes_[path.back()].ids_end = std::uint32_t(ids_.size());
            longest_ = std::max(longest_, s.size());
            prev = &s;
        }
        for (const std::uint32_t p : path) nodes_[p].end = std::uint32_t(nodes_.size());
    }

    std::int32_t vocab_size() const { return std::int32_t(bytes_.size()); }
    // Token `id`'s bytes as the grammar sees them (empty for tokens that end generation).
    const std::string& bytes(std::int32_t id) const { return bytes_.at(std::size_t(id)); }
    std::span<const std::int32_t> end_tokens() const { return ends_; }
    bool ends(std::int32_t id) const { return std::binary_search(ends_.begin(), ends_.end(), id); }

private:
    friend class TokenConstraint;
    struct Node {
        unsigned char byte;      // the edge from the parent
        std::uint32_t end;       // one past the last node of this subtree
        std::uint32_t ids_begin, ids_end;  // tokens whose bytes end here: ids_[ids_begin, ids_end)
    };
    std::vector<Node> nodes_;  // nodes_[0] is the root (the empty prefix)
    std::vector<std::int32_t> ids_;
    std::vector<std::string> bytes_;
    std::vector<std::int32_t> ends_;  // ascending
    std::size_t longest_ = 0;
};

// A grammar's state over a vocabulary: copy it to branch, as generation copies the one it is given.
// The masks of the last `cached_states` distinct states are kept: a state recurs often (inside an
// unbounded string, each character leaves the same state), and then its mask is a copy.
class TokenConstraint {
public:
    TokenConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const VocabTrie> vocab, MatchLimits limits = {},
                    std::size_t cached_states = 16)
        : vocab_(std::move(vocab)), matcher_(std::move(grammar), limits), cached_states_(cached_states) {
        if (!vocab_) throw Error("grammar: the constraint needs a vocabulary");
    }

    const VocabTrie& vocab() const { return *vocab_; }
    bool complete() const { return matcher_.complete(); }
    bool can_continue() const { return matcher_.can_continue(); }

    // allowed[id] = 1 for every token that may come next, else 0. `also_end` are further tokens that
    // end generation (e.g. a request's stop tokens): allowed exactly when the grammar is complete.
    void allowed(std::vector<char>& allowed, std::span<const std::int32_t> also_end = {}) {
        matcher_.signature(key_);
        if (const auto it = std::find_if(cache_.begin(), cache_.end(), [&](const auto& c) { return c.first == key_; }); it != cache_.end()) {
            allowed = it->second;
        } else {
            allowed.assign(std::size_t(vocab_->vocab_size()), 0);
            levels_.resize(vocab_->longest_ + 1);
            walk(0, matcher_.heads(), 0, allowed);
            if (cached_states_ > 0) {
                if (cache_.size() == cached_states_) cache_.erase(cache_.begin());
                cache_.emplace_back(key_, allowed);
            }
        }
        const char end = matcher_.complete() ? 1 : 0;
        for (const std::int32_t id : vocab_->end_tokens()) allowed[std::size_t(id)] = end;
        for (const std::int32_t id : also_end)
            if (id >= 0 && id < vocab_->vocab_size()) allowed[std::size_t(id)] = end;
    }

    // Sets the logits of tokens that may not come next to -inf (and those past the vocabulary: a
    // model's output may be padded beyond it); returns how many tokens remain.
    std::size_t mask(std::span<float> logits, std::span<const std::int32_t> also_end = {}) {
        if (logits.size() < std::size_t(vocab_->vocab_size()))
            throw Error("grammar: " + std::to_string(logits.size()) + " logits for a vocabulary of " + std::to_string(vocab_->vocab_size()));
        allowed(allowed_, also_end);
        std::size_t n = 0;
        for (std::size_t i = 0; i < logits.size(); ++i) {
            if (i < allowed_.size() && allowed_[i]) {
                ++n;
            } else {
                logits[i] = -INFINITY;
            }
        }
        return n;
    }

    // Advances past token `id` (a token that ends generation changes nothing). A token that can't
    // continue the text is a forge::Error.
    void accept(std::int32_t id) {
        if (id < 0 || id >= vocab_->vocab_size()) throw Error("grammar: token id " + std::to_string(id) + " is out of range");
        if (vocab_->ends(id)) return;
        const std::string& b = vocab_->bytes(id);
        if (b.empty() || !matcher_.feed(b))
            throw Error("grammar: token " + std::to_string(id) + " (" + quoted_text(b) + ") does not continue the text");
    }

private:
    void walk(std::uint32_t node, const Heads& from, std::size_t depth, std::vector<char>& allowed) {
        const auto& nodes = vocab_->nodes_;
        Heads& next = levels_[depth];
        for (std::uint32_t c = node + 1; c < nodes[node].end; c = nodes[c].end) {
            const std::size_t mark = matcher_.mark();
            matcher_.step(from, nodes[c].byte, next);
            if (!next.dead()) {
                for (std::uint32_t i = nodes[c].ids_begin; i < nodes[c].ids_end; ++i) allowed[std::size_t(vocab_->ids_[i])] = 1;
                if (c + 1 < nodes[c].end) walk(c, next, depth + 1, allowed);
            }
            matcher_.rewind(mark);
        }
    }

    std::shared_ptr<const VocabTrie> vocab_;
    Matcher matcher_;
    std::size_t cached_states_;
    std::vector<std::pair<std::vector<std::uint32_t>, std::vector<char>>> cache_;  // (state signature, its walk's result), oldest first
    std::vector<std::uint32_t> key_;
    std::vector<Heads> levels_;  // the stacks after each byte of the current trie path
    std::vector<char> allowed_;
};

}  // namespace forge::grammar
