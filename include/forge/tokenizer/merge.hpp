#pragma once
// The merge loop SentencePiece and BPE share: the text starts as single characters, and the adjacent pair
// with the highest priority (leftmost on ties) is merged, again and again, until no pair has a priority.
// A priority queue with lazy invalidation keeps this O(n log n) on long inputs.
#include <cstddef>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

#include "forge/tokenizer/unicode.hpp"

namespace forge::tokenizer::detail {

// A run of text in a doubly linked list of adjacent pieces; merging grows the left piece and empties the right.
struct Symbol {
    int prev, next;
    std::size_t begin, length;
};

// Merges the characters of `text` (valid UTF-8) and returns the pieces, linked from index 0 (none when the
// text is empty). `priority(left, right, merged)` gives a pair's priority, or nullopt when it does not merge.
template <class Priority>
std::vector<Symbol> merge_pieces(std::string_view text, Priority priority) {
    std::vector<Symbol> symbols;
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t n = utf8_step(text, pos).length;
        symbols.push_back({int(symbols.size()) - 1, pos + n == text.size() ? -1 : int(symbols.size()) + 1, pos, n});
        pos += n;
    }

    struct Pair {
        double priority;
        int left, right;
        std::size_t length;  // of the merged text: a pair whose symbols changed since it was queued no longer matches
    };
    auto before = [](const Pair& a, const Pair& b) { return a.priority < b.priority || (a.priority == b.priority && a.left > b.left); };
    std::priority_queue<Pair, std::vector<Pair>, decltype(before)> queue(before);
    auto try_pair = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = symbols[std::size_t(left)];
        const Symbol& r = symbols[std::size_t(right)];
        const std::optional<double> p =
            priority(text.substr(l.begin, l.length), text.substr(r.begin, r.length), text.substr(l.begin, l.length + r.length));
        if (p) queue.push({*p, left, right, l.length + r.length});
    };
    for (int i = 1; i < int(symbols.size()); ++i) try_pair(i - 1, i);

    while (!queue.empty()) {
        const Pair p = queue.top();
        queue.pop();
        Symbol& left = symbols[std::size_t(p.left)];
        Symbol& right = symbols[std::size_t(p.right)];
        // A symbol only grows by absorbing its right neighbour, so the pair is current exactly when both
        // halves are alive and their lengths still add up to the merged length.
        if (left.length == 0 || right.length == 0 || left.length + right.length != p.length) continue;
        left.length += right.length;
        right.length = 0;
        left.next = right.next;
        if (right.next >= 0) symbols[std::size_t(right.next)].prev = p.left;
        try_pair(left.prev, p.left);
        try_pair(p.left, left.next);
    }
    return symbols;
}

}  // namespace forge::tokenizer::detail
