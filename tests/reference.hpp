#pragma once
// llama.cpp's reference runs (testdata/reference/*.json) and how forge is compared against them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "forge/json/json.hpp"
#include "testdata.hpp"

namespace forge::test {

struct ReferenceStep {
    int pos;
    std::int32_t input;
    std::int32_t argmax;
    std::vector<float> logits;
};

struct Reference {
    std::vector<std::int32_t> prompt;
    std::vector<ReferenceStep> steps;
    std::vector<std::int32_t> generated;
    double logits_std = 0;  // over every logit in the file: the unit of the tolerances
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline std::vector<std::int32_t> ids(const json::Value& v) {
    std::vector<std::int32_t> out;
    for (const auto& e : v.as_array()) out.push_back(static_cast<std::int32_t>(e.as_number()));
    return out;
}

inline Reference load_reference_file(const std::string& path) {
    const json::Value doc = json::parse(read_file(path));
    Reference r;
    r.prompt = ids(doc.at("prompt"));
    r.generated = ids(doc.at("generated"));
    double sum = 0, sum2 = 0;
    std::size_t count = 0;
    if (const auto* steps = doc.find("steps")) {
        for (const auto& s : steps->as_array()) {
            ReferenceStep st{int(s.at("pos").as_number()), std::int32_t(s.at("input").as_number()),
                             std::int32_t(s.at("argmax").as_number()), {}};
            for (const auto& l : s.at("logits").as_array()) {
                st.logits.push_back(float(l.as_number()));
                sum += l.as_number();
                sum2 += l.as_number() * l.as_number();
                ++count;
            }
            r.steps.push_back(std::move(st));
        }
    }
    if (count) r.logits_std = std::sqrt(std::max(0.0, sum2 / double(count) - (sum / double(count)) * (sum / double(count))));
    return r;
}

// A reference of the shared test data.
inline Reference load_reference(const std::string& name) { return load_reference_file(testdata("reference/" + name)); }

// Margin between the largest and second-largest logit.
inline float top2_margin(std::span<const float> l) {
    float a = -INFINITY, b = -INFINITY;
    for (const float x : l) {
        if (x > a) {
            b = a;
            a = x;
        } else if (x > b) {
            b = x;
        }
    }
    return a - b;
}

struct Deviation {
    double max_abs = 0;   // largest |forge - llama.cpp| over every logit
    int argmax_checked = 0;
};

// Teacher-forced: the prompt through one batched prefill, every later step through decode of its input; the
// argmax must agree wherever llama.cpp's top two logits are further apart than `bound` (unless
// `check_argmax` is false: for a model expected to differ, only the deviation is measured).
template <class M>
Deviation compare(M& model, const Reference& ref, double bound, bool check_argmax = true) {
    const int vocab = model.shape().vocab;
    const std::size_t P = ref.prompt.size();
    std::vector<float> prompt_logits(P * std::size_t(vocab));
    model.prefill(ref.prompt, prompt_logits.data());
    Deviation dev;
    for (std::size_t i = 0; i < ref.steps.size(); ++i) {
        const auto& step = ref.steps[i];
        EXPECT_EQ(step.pos, int(i));
        std::vector<float> got;
        if (i < P) {
            EXPECT_EQ(step.input, ref.prompt[i]);
            got.assign(prompt_logits.begin() + std::ptrdiff_t(i * vocab), prompt_logits.begin() + std::ptrdiff_t((i + 1) * vocab));
        } else {
            const auto l = model.decode(step.input);
            got.assign(l.begin(), l.end());
        }
        for (int v = 0; v < vocab; ++v) dev.max_abs = std::max(dev.max_abs, double(std::fabs(got[v] - step.logits[v])));
        if (check_argmax && top2_margin(step.logits) > bound) {
            ++dev.argmax_checked;
            EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(), step.argmax) << "position " << i;
        }
    }
    return dev;
}

}  // namespace forge::test
