// `forge template` run as a user runs it: the model's own template (or a template file) renders the
// conversation and tools given as OpenAI JSON; bad input is one error line and a non-zero exit.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "run_process.hpp"
#include "testdata.hpp"

namespace {

using forge::test::ProcessResult;
using forge::test::run_process;

const std::string kTemplates = FORGE_SOURCE_DIR "/tests/data/chat-templates/";

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(CliTemplate, TemplateFileRendersAsTheReference) {
    const ProcessResult r = run_process({FORGE_CLI, "template", "--chat-template-file", kTemplates + "Qwen-Qwen2.5-7B-Instruct.jinja",
                                         "--messages", R"([{"role": "user", "content": "What is the weather in Paris?"}])", "--tools",
                                         R"([{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, read_bytes(kTemplates + "Qwen-Qwen2.5-7B-Instruct.conv3.txt"));
}

TEST(CliTemplate, ModelWithoutTemplateUsesTheBuiltInFamily) {
    const std::string messages = R"([{"role": "user", "content": "Hi"}])";
    const std::string model = forge::test::model_path("stories260K.gguf");
    const ProcessResult r = run_process({FORGE_CLI, "template", "-m", model, "--messages", messages});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    const ProcessResult no_prompt = run_process({FORGE_CLI, "template", "-m", model, "--messages", messages, "--no-generation-prompt"});
    EXPECT_EQ(no_prompt.out, "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(CliTemplate, ErrorsAreOneLine) {
    const std::string file = kTemplates + "google-gemma-2-2b-it.jinja";
    const ProcessResult raised = run_process({FORGE_CLI, "template", "--chat-template-file", file, "--messages", R"([{"role": "assistant", "content": "x"}])"});
    EXPECT_EQ(raised.exit_code, 1);
    EXPECT_NE(raised.err.find("Conversation roles must alternate"), std::string::npos) << raised.err;
    const ProcessResult bad = run_process({FORGE_CLI, "template", "--chat-template-file", file, "--messages", R"([{"content": "x"}])"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("messages[0].role is required"), std::string::npos) << bad.err;
    EXPECT_EQ(run_process({FORGE_CLI, "template", "--messages", "[]"}).exit_code, 1) << "no template given";
}

}  // namespace
