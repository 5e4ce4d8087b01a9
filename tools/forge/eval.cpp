// forge eval: teacher-forced logits at every position, in the reference JSON format of llama.cpp runs,
// so forge can be compared with other engines position by position.
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "args.hpp"
#include "backend.hpp"
#include "commands.hpp"
#include "forge/json/json.hpp"
#include "forge/model/open_model.hpp"

namespace forge::cli {

int eval(int argc, char** argv) {
    const Args args(argc, argv, {{"--model", "-m"}, {"--tokens", ""}, {"--prompt-len", ""}, {"--json", ""},
                                 {"--threads", "-t"}, {"--backend", ""}});
    const auto model_path = args.get("--model");
    const auto tokens_arg = args.get("--tokens");
    const auto out_path = args.get("--json");
    if (!model_path || !tokens_arg || !out_path)
        throw Error(std::string("usage: forge eval -m MODEL.gguf --tokens 1,2,3 [--prompt-len P] --json OUT.json [--backend ") +
                    kBackendHelp + "]");
    const auto tokens = parse_ids(*tokens_arg);
    if (tokens.empty()) throw Error("--tokens is empty");
    const int prompt_len = args.number("--prompt-len", int(tokens.size()));
    if (prompt_len < 1 || prompt_len > int(tokens.size()))
        throw Error("--prompt-len must be between 1 and the number of tokens (" + std::to_string(tokens.size()) + ")");

    const auto model = open_model(gguf::File::open(*model_path),
                                  {.threads = args.number("--threads", 1), .backend = parse_backend(args.get_or("--backend", "cpu"))});
    const int V = model->shape().vocab;
    std::vector<float> logits(tokens.size() * std::size_t(V));
    model->prefill(std::span(tokens).first(std::size_t(prompt_len)), logits.data());
    for (std::size_t i = std::size_t(prompt_len); i < tokens.size(); ++i) {
        const auto l = model->decode(tokens[i]);
        std::copy(l.begin(), l.end(), logits.begin() + std::ptrdiff_t(i * std::size_t(V)));
    }

    json::Array steps;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const float* l = &logits[i * std::size_t(V)];
        json::Array row(l, l + V);
        steps.push_back(json::Object{{"pos", int(i)}, {"input", tokens[i]},
                                     {"argmax", int(std::max_element(l, l + V) - l)}, {"logits", std::move(row)}});
    }
    const auto ids = [](auto first, auto last) { return json::Array(first, last); };
    const json::Value doc = json::Object{{"prompt", ids(tokens.begin(), tokens.begin() + prompt_len)},
                                         {"vocab", V},
                                         {"steps", std::move(steps)},
                                         {"generated", ids(tokens.begin() + prompt_len, tokens.end())}};
    std::ofstream out(*out_path, std::ios::binary);
    out << json::dump(doc) << '\n';
    if (!out) throw Error("cannot write '" + *out_path + "'");
    std::fprintf(stderr, "forge eval: %zu positions (%d prefilled), %s -> %s\n", tokens.size(), prompt_len,
                 describe_path(*model).c_str(), out_path->c_str());
    return 0;
}

}  // namespace forge::cli
