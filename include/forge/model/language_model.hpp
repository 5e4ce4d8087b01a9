#pragma once
// A language model as a program uses it: the model file's weights on a backend, its tokenizer and its
// chat format, opened in one call. complete() generates from a whole prompt (a chat's conversation so
// far, say), reusing the longest prefix of it the model already holds, so a conversation's history is not
// computed again on every turn.
//
//   auto lm = forge::LanguageModel::open("model.gguf", {.context = 4096});
//   const std::vector<forge::chat::Message> chat = {{"user", "Tell me a story."}};
//   lm.complete(lm.chat_prompt(chat), {.max_tokens = 200}, [](const forge::TokenEvent& e) {
//       std::fwrite(e.text.data(), 1, e.text.size(), stdout);
//       return true;
//   });
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "forge/chat/template.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/model/generate.hpp"
#include "forge/model/open_model.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge {

class LanguageModel {
public:
    // Opens `path` with `opt` (backend, context, threads). T: compiled traits the file must match, or
    // Dynamic (the default) for the file's own shape.
    template <class T = Dynamic>
    static LanguageModel open(const std::string& path, ModelOptions opt = {}) {
        return open<T>(gguf::File::open(path), opt);
    }
    // The same for a file already opened (gguf::File::open(path, Residency::own_memory), say).
    template <class T = Dynamic>
    static LanguageModel open(gguf::File file, ModelOptions opt = {}) {
        Tokenizer tok = Tokenizer::from_gguf(file);
        chat::Template chat = chat::Template::of(file);
        auto model = open_model<T>(file, opt);
        opt.check_tensors = false;  // checked once
        return LanguageModel(std::move(model), std::move(tok), std::move(chat), [file, opt] { return open_model<T>(file, opt); });
    }

    AnyModel& model() { return *model_; }
    const AnyModel& model() const { return *model_; }
    const Tokenizer& tokenizer() const { return tok_; }
    // The model's chat template (its own Jinja template, or the built-in family it resembles).
    const chat::Template& chat_template() const { return chat_; }
    chat::Format chat_format() const { return chat_.format(); }

    // `text` as tokens, after BOS when the model's vocabulary adds one and `add_bos` is true.
    std::vector<std::int32_t> tokenize(std::string_view text, bool add_bos = true) const { return tok_.encode(text, add_bos && tok_.add_bos()); }
    std::string detokenize(std::span<const std::int32_t> tokens) const { return tok_.decode(tokens); }
    // The prompt for `messages` by the model's chat template, ending where the assistant's reply begins
    // (unless `opt` says otherwise).
    std::vector<std::int32_t> chat_prompt(std::span<const chat::Message> messages, const chat::RenderOptions& opt = {}) const {
        return chat_.encode(tok_, messages, opt);
    }

    // Generates a completion of `prompt`, the whole sequence so far: the model keeps the longest prefix of
    // it that it holds and feeds only the rest. The result's prompt_tokens counts the tokens fed.
    GenerationResult complete(std::span<const std::int32_t> prompt, const GenerationParams& params, const TokenCallback& on_token = {}) {
        if (prompt.empty()) throw Error("the prompt is empty: there is nothing to complete (tokenize() adds BOS where the model wants one)");
        const int kept = model_->keep_prefix_of(prompt);
        return generate(*model_, tok_, prompt.subspan(std::size_t(kept)), params, on_token);
    }

    // Another sequence over the same weights: a second conversation, or a copy of this one's prefix
    // (model().copy_prefix_to(*other, n)). On the CPU it is model().new_sequence() (weights and threads
    // shared, so AnyModel::feed_together can feed both in one pass); on a backend holding one sequence
    // per model, another model over the same file mapping, opened with the same options.
    std::unique_ptr<AnyModel> new_sequence() const { return model_->has_sequences() ? model_->new_sequence() : reopen_(); }

private:
    using Reopen = std::function<std::unique_ptr<AnyModel>()>;
    LanguageModel(std::unique_ptr<AnyModel> model, Tokenizer tok, chat::Template chat, Reopen reopen)
        : model_(std::move(model)), tok_(std::move(tok)), chat_(std::move(chat)), reopen_(std::move(reopen)) {}

    std::unique_ptr<AnyModel> model_;
    Tokenizer tok_;
    chat::Template chat_;
    Reopen reopen_;
};

}  // namespace forge
