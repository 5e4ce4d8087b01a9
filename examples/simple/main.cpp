// simple: loads a GGUF model and streams its reply to one chat message.
//   usage: simple MODEL.gguf "prompt"
#include <cstdio>
#include <exception>
#include <vector>

#include <forge/forge.hpp>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s MODEL.gguf \"prompt\"\n", argv[0]);
        return 2;
    }
    try {
        // The weights, the tokenizer and the chat format, in one call (CPU, one thread per core).
        auto lm = forge::LanguageModel::open(argv[1]);
        const std::vector<forge::chat::Message> chat = {{"user", argv[2]}};
        // Each event's text is final: print it as it comes.
        lm.complete(lm.chat_prompt(chat), {.max_tokens = 256}, [](const forge::TokenEvent& e) {
            std::fwrite(e.text.data(), 1, e.text.size(), stdout);
            std::fflush(stdout);
            return true;
        });
        std::fputc('\n', stdout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}
