#pragma once
// The sandbox a chat template runs in. A template comes with a model file, so it is hostile input: each
// bound below turns what would be a crash, a hang or unbounded memory into a forge::Error naming it.
// Real chat templates stay far inside every one (the largest known is ~30 KB, nests ~10 deep and renders
// a few KB per conversation).
#include <cstddef>
#include <cstdint>

namespace forge::chat::jinja {

// Template text, in bytes.
inline constexpr std::size_t kMaxTemplateBytes = 1 << 20;
// Nested blocks and sub-expressions while parsing: bounds the parser's recursion, and so the
// interpreter's, which walks the same tree.
inline constexpr int kMaxParseDepth = 200;
// Loop iterations over the whole render (every `for`, nested ones included, and each item a filter
// such as `map` or `join` walks counts too); also the most items a list may hold.
inline constexpr std::int64_t kMaxLoopIterations = 1'000'000;
// The rendered text, and any one string a template computes, in bytes.
inline constexpr std::size_t kMaxOutputBytes = 8 << 20;
// All string bytes a render may produce or scan in total: bounds the time a template can spend on
// string work that each stays under kMaxOutputBytes (a loop re-copying a large string).
inline constexpr std::size_t kMaxStringWork = std::size_t(512) << 20;
// Nested macro calls (recursion through macros).
inline constexpr int kMaxCallDepth = 100;
// Nested blocks and macro calls while rendering, together: bounds the interpreter's stack when deep
// blocks sit inside deep recursion.
inline constexpr int kMaxRenderDepth = 400;
// How deep values (lists in lists, dicts in dicts) may nest when compared, printed or converted: a list
// appended to itself never ends.
inline constexpr int kMaxValueDepth = 128;

}  // namespace forge::chat::jinja
