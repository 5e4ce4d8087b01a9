// Renders chat templates with llama.cpp's own Jinja engine, driven as llama-server drives it
// (common_chat_templates_init, then common_chat_templates_apply with use_jinja), for the three
// conversations forge's tests compare against. Built against llama.cpp's common library by
// make_references.sh; not part of forge's build.
//
//   render_references TEMPLATE.jinja BOS EOS OUT_PREFIX
//
// writes OUT_PREFIX.conv1.txt .. conv3.txt, or OUT_PREFIX.convN.error holding llama.cpp's exception
// message when the render throws. BOS or EOS "-" means empty.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chat.h"

static std::string read_file(const char* path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

static void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
}

static common_chat_msg message(const char* role, const char* content) {
    common_chat_msg m;
    m.role = role;
    m.content = content;
    return m;
}

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s TEMPLATE.jinja BOS EOS OUT_PREFIX\n", argv[0]);
        return 1;
    }
    const std::string bos = std::string(argv[2]) == "-" ? "" : argv[2];
    const std::string eos = std::string(argv[3]) == "-" ? "" : argv[3];
    const std::string prefix = argv[4];

    const std::vector<std::vector<common_chat_msg>> conversations = {
        {message("user", "Hi")},
        {message("system", "You are terse."), message("user", "What is 2+2?"), message("assistant", "4"), message("user", "And 3+3?")},
        {message("user", "What is the weather in Paris?")},
    };
    common_chat_tool weather;
    weather.name = "get_weather";
    weather.description = "Current weather for a city";
    weather.parameters = R"({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})";

    for (size_t i = 0; i < conversations.size(); ++i) {
        const std::string out = prefix + ".conv" + std::to_string(i + 1);
        try {
            auto tmpls = common_chat_templates_init(nullptr, read_file(argv[1]), bos, eos);
            common_chat_templates_inputs inputs;
            inputs.use_jinja = true;
            inputs.messages = conversations[i];
            inputs.add_generation_prompt = true;
            inputs.enable_thinking = false;
            if (i == 2) inputs.tools = {weather};
            write_file(out + ".txt", common_chat_templates_apply(tmpls.get(), inputs).prompt);
        } catch (const std::exception& e) {
            write_file(out + ".error", std::string(e.what()) + "\n");
        }
    }
    return 0;
}
