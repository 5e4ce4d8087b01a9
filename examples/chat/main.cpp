// chat: a conversation on stdin and stdout, one line per user turn; end it with Ctrl-D.
// Every turn hands complete() the whole conversation. The model still holds the turns before, so only
// what is new is fed: stderr says how many prompt tokens were fed and how many reused.
//   usage: chat MODEL.gguf [SYSTEM_PROMPT]
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <forge/forge.hpp>

int main(int argc, char** argv) {
    if (argc != 2 && argc != 3) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [SYSTEM_PROMPT]\n", argv[0]);
        return 2;
    }
    try {
        auto lm = forge::LanguageModel::open(argv[1]);
        std::vector<forge::chat::Message> chat;
        if (argc == 3) chat.push_back({"system", argv[2]});
        const forge::GenerationParams params{.max_tokens = 200, .sampling = {.temperature = 0.8f, .top_p = 0.95f}};
        const auto print = [](const forge::TokenEvent& e) {
            std::fwrite(e.text.data(), 1, e.text.size(), stdout);
            std::fflush(stdout);
            return true;
        };
        const auto read_turn = [](std::string& line) {
            std::fputs("> ", stdout);
            std::fflush(stdout);
            return bool(std::getline(std::cin, line));
        };
        for (std::string line; read_turn(line);) {
            chat.push_back({"user", line});
            const auto prompt = lm.chat_prompt(chat);
            const auto result = lm.complete(prompt, params, print);
            std::fputc('\n', stdout);
            chat.push_back({"assistant", result.text});
            std::fprintf(stderr, "[prompt: %zu tokens, %d fed, %zu reused]\n", prompt.size(), result.prompt_tokens,
                         prompt.size() - std::size_t(result.prompt_tokens));
        }
        std::fputc('\n', stdout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}
