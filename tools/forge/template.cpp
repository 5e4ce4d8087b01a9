// forge template: the prompt a model's chat template (or a template file) makes of a conversation.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "args.hpp"
#include "commands.hpp"
#include "forge/chat/template.hpp"
#include "forge/core/error.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/json/json.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge::cli {

namespace {

constexpr const char* kUsage =
    "usage: forge template -m MODEL.gguf | --chat-template-file FILE --messages JSON [--tools JSON]\n"
    "                      [--no-generation-prompt] [--enable-thinking]\n"
    "  -m MODEL.gguf          the model's own chat template, and its BOS/EOS texts\n"
    "  --chat-template-file   a Jinja template instead (with -m, the model still gives BOS/EOS)\n"
    "  --messages JSON        the conversation, as OpenAI's API sends it: [{\"role\": \"user\", \"content\": \"Hi\"}]\n"
    "  --tools JSON           tools offered, as OpenAI's API sends them: [{\"type\": \"function\", \"function\": {...}}]\n"
    "  --no-generation-prompt end after the last message instead of where the assistant's reply begins\n"
    "  --enable-thinking      for templates with a reasoning switch\n"
    "Prints the rendered prompt as it is, without a newline added.\n";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open '" + path + "'");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

json::Value parse_option(const Args& args, const char* name) {
    try {
        return json::parse(*args.get(name));
    } catch (const Error& e) {
        throw Error(std::string(name) + ": " + e.what());
    }
}

}  // namespace

int chat_template(int argc, char** argv) {
    const Args args(argc, argv,
                    {{"--model", "-m"}, {"--chat-template-file", ""}, {"--messages", ""}, {"--tools", ""},
                     {"--no-generation-prompt", "", false}, {"--enable-thinking", "", false}, {"--help", "-h", false}});
    if (args.has("--help")) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (!args.positional().empty()) throw Error("unexpected argument '" + args.positional()[0] + "' (forge template -h for usage)");
    if (!args.has("--model") && !args.has("--chat-template-file")) throw Error("give -m MODEL.gguf or --chat-template-file FILE");
    if (!args.has("--messages")) throw Error("no conversation given (--messages JSON)");

    chat::RenderOptions opt;
    opt.add_generation_prompt = !args.has("--no-generation-prompt");
    opt.enable_thinking = args.has("--enable-thinking");
    if (args.has("--tools")) {
        const json::Value tools = parse_option(args, "--tools");
        if (!tools.is_array()) throw Error(std::string("--tools must be a JSON array, got ") + tools.type_name());
        opt.tools = tools.as_array();
    }
    const std::vector<chat::Message> messages = chat::messages_from_json(parse_option(args, "--messages"));

    std::optional<chat::Template> tmpl;
    if (const auto path = args.get("--chat-template-file")) tmpl.emplace(std::string_view(read_file(*path)));
    if (const auto model = args.get("--model")) {
        const gguf::File file = gguf::File::open(*model);
        const Tokenizer tok = Tokenizer::from_gguf(file);
        if (!tmpl) tmpl.emplace(chat::Template::of(file));
        opt.bos_token = chat::token_text_or(tok, tok.bos(), "");
        opt.eos_token = chat::token_text_or(tok, tok.eos(), "");
    }
    const std::string prompt = tmpl->render(messages, opt);
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    return 0;
}

}  // namespace forge::cli
