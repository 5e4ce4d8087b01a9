// Sampling: the categorical draw's exact semantics (shared with the GPU kernel), each filter's effect,
// seeded reproducibility, and argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "forge/sample/sampler.hpp"

namespace forge {
namespace {

std::vector<float> logits_of(const std::vector<float>& probs) {
    std::vector<float> l;
    for (const float p : probs) l.push_back(std::log(p));
    return l;
}

TEST(Categorical, PicksFirstIndexWhoseRunningSumExceedsU) {
    const auto l = logits_of({0.25f, 0.5f, 0.25f});
    EXPECT_EQ(sample_categorical(l, 1.0f, 0.0f).id, 0);
    EXPECT_EQ(sample_categorical(l, 1.0f, 0.2499f).id, 0);
    EXPECT_EQ(sample_categorical(l, 1.0f, 0.2501f).id, 1);
    EXPECT_EQ(sample_categorical(l, 1.0f, 0.7499f).id, 1);
    EXPECT_EQ(sample_categorical(l, 1.0f, 0.7501f).id, 2);
    EXPECT_EQ(sample_categorical(l, 1.0f, 0.99999994f).id, 2);
    EXPECT_NEAR(sample_categorical(l, 1.0f, 0.5f).logprob, std::log(0.5f), 1e-6);
}

TEST(Categorical, TemperatureSharpensAndFlattens) {
    const std::vector<float> l = {1.0f, 2.0f};
    // p(1) at temperature T is 1 / (1 + e^(-1/T)); the log-probability reported is the model's own (T = 1).
    for (const float t : {0.25f, 1.0f, 4.0f}) {
        const float p1 = 1.0f / (1.0f + std::exp(-1.0f / t));
        EXPECT_NEAR(sample_categorical(l, t, 0.999f).logprob, -std::log1p(std::exp(-1.0f)), 1e-6) << t;
        EXPECT_EQ(sample_categorical(l, t, (1.0f - p1) * 0.99f).id, 0) << t;
        EXPECT_EQ(sample_categorical(l, t, (1.0f - p1) * 1.01f).id, 1) << t;
    }
}

TEST(Categorical, ZeroProbabilityTokensAreNeverDrawn) {
    const std::vector<float> l = {-INFINITY, 0.0f, -INFINITY, 0.0f, -INFINITY};
    for (const float u : {0.0f, 0.3f, 0.5f, 0.7f, 0.9999f}) {
        const auto s = sample_categorical(l, 1.0f, u);
        EXPECT_TRUE(s.id == 1 || s.id == 3) << u;
        EXPECT_NEAR(s.logprob, std::log(0.5f), 1e-6);
    }
}

TEST(Categorical, RejectsBadArguments) {
    const std::vector<float> l = {0.0f, 1.0f};
    EXPECT_THROW(sample_categorical(l, -1.0f, 0.5f), Error);
    EXPECT_THROW(sample_categorical(l, 1.0f, 1.0f), Error);
    EXPECT_THROW(sample_categorical(l, 1.0f, -0.1f), Error);
    EXPECT_THROW(sample_categorical({}, 1.0f, 0.5f), Error);
}

TEST(Categorical, TinyTemperaturesDrawTheArgmaxWithCertainty) {
    // Logits of a real scale, close together: multiplied by 1/temperature they would round by more than
    // their differences.
    std::vector<float> l;
    for (int i = 0; i < 512; ++i) l.push_back(12.0f + 0.001f * float((i * 37) % 512));
    const auto top = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
    for (const float t : {1e-6f, 1e-9f, 5e-9f, 1e-20f, 1e-38f, 1.4e-45f}) {
        for (const float u : {0.0f, 0.5f, 0.999f}) {
            const SampledToken s = sample_categorical(l, t, u);
            EXPECT_EQ(s.id, top) << "temperature " << t << ", u " << u;
            EXPECT_EQ(s.logprob, sample_categorical(l, 0.0f, 0.0f).logprob) << "temperature " << t;
        }
    }
    const std::vector<float> masked = {-INFINITY, -INFINITY};
    EXPECT_THROW(sample_categorical(masked, 1.0f, 0.5f), Error);
}

TEST(Categorical, TemperatureZeroIsTheFirstArgmax) {
    const std::vector<float> l = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f};
    for (const float u : {0.0f, 0.7f}) {
        const SampledToken s = sample_categorical(l, 0.0f, u);
        EXPECT_EQ(s.id, 1);
        float sum = 0.0f;
        for (const float x : l) sum += std::exp(x - 3.0f);
        EXPECT_NEAR(s.logprob, -std::log(sum), 1e-6);
    }
}

TEST(Categorical, DrawsOverManySegmentsFollowTheCdf) {
    // 5000 equal logits: segments of 5 (1000 of the 1024 in use); the draw at u is token u x 5000,
    // give or take the sums' rounding.
    const std::vector<float> l(5000, 0.25f);
    for (const float u : {0.0f, 0.0001f, 0.1234f, 0.5f, 0.77777f, 0.9999f}) {
        const SampledToken s = sample_categorical(l, 1.0f, u);
        EXPECT_NEAR(double(s.id), std::floor(double(u) * 5000.0), 1.0) << u;
        EXPECT_NEAR(s.logprob, -std::log(5000.0f), 1e-5) << u;
    }
    EXPECT_EQ(sample_categorical(l, 1.0f, 0.0f).id, 0);
}

std::map<int, int> histogram(SamplerParams p, const std::vector<float>& logits, int draws) {
    Sampler s(p);
    std::map<int, int> h;
    for (int i = 0; i < draws; ++i) ++h[s.sample(logits)];
    return h;
}

TEST(Sampler, PlainDrawPicksWhatSamplePicks) {
    std::mt19937 rng(3);
    std::normal_distribution<float> d(0.0f, 3.0f);
    std::vector<float> l(3000);
    for (auto& x : l) x = d(rng);
    for (const float t : {0.0f, 0.7f, 1.0f, 1.3f}) {
        Sampler a({.temperature = t, .seed = 9}), b({.temperature = t, .seed = 9});
        ASSERT_TRUE(b.plain());
        for (int i = 0; i < 50; ++i) {
            const auto [temperature, u] = b.plain_draw();
            EXPECT_EQ(a.sample(l), sample_categorical(l, temperature, u).id) << "t " << t << " draw " << i;
        }
    }
    for (const SamplerParams p : {SamplerParams{.top_k = 40}, SamplerParams{.top_p = 0.9f}, SamplerParams{.min_p = 0.05f},
                                  SamplerParams{.repeat_penalty = 1.1f}}) {
        Sampler s(p);
        EXPECT_FALSE(s.plain());
        EXPECT_THROW(s.plain_draw(), Error);
    }
}

TEST(Sampler, GreedyIsArgmax) {
    Sampler s({.temperature = 0.0f});
    EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, 2.9f}), 1);
}

TEST(Sampler, TemperatureBelowTheThresholdIsGreedy) {
    const std::vector<float> l = {0.1f, 3.0f, 2.9999f, -1.0f};
    for (const float t : {kGreedyBelowTemperature / 2, 1e-9f, 1e-30f, 1.4e-45f}) {
        Sampler s({.temperature = t, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 3});
        for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(l), 1) << t;
    }
}

TEST(Sampler, FrequenciesFollowTheDistribution) {
    const auto h = histogram({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 7},
                             logits_of({0.2f, 0.3f, 0.5f}), 20000);
    EXPECT_NEAR(h.at(0) / 20000.0, 0.2, 0.015);
    EXPECT_NEAR(h.at(1) / 20000.0, 0.3, 0.015);
    EXPECT_NEAR(h.at(2) / 20000.0, 0.5, 0.015);
}

TEST(Sampler, TopKKeepsOnlyTheKLargest) {
    const auto h = histogram({.temperature = 1.0f, .top_k = 2, .top_p = 1.0f, .min_p = 0.0f, .seed = 1},
                             logits_of({0.3f, 0.1f, 0.35f, 0.25f}), 4000);
    EXPECT_EQ(h.count(1) + h.count(3), 0u);
    EXPECT_GT(h.at(0), 1000);
    EXPECT_GT(h.at(2), 1000);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
    // Sorted: 0.5 (tok 2), 0.3 (tok 0), 0.2 (tok 1). top_p 0.7 needs tokens 2 and 0.
    const auto h = histogram({.temperature = 1.0f, .top_k = 0, .top_p = 0.7f, .min_p = 0.0f, .seed = 2},
                             logits_of({0.3f, 0.2f, 0.5f}), 4000);
    EXPECT_EQ(h.count(1), 0u);
    EXPECT_NEAR(h.at(2) / 4000.0, 0.5 / 0.8, 0.03);
}

TEST(Sampler, MinPDropsTokensFarBelowTheTop) {
    // min_p 0.3: tokens below 0.3 x 0.6 = 0.18 go.
    const auto h = histogram({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.3f, .seed = 3},
                             logits_of({0.6f, 0.25f, 0.15f}), 4000);
    EXPECT_EQ(h.count(2), 0u);
    EXPECT_GT(h.at(1), 500);
}

TEST(Sampler, RepetitionPenaltyDemotesRecentTokens) {
    Sampler s({.temperature = 0.0f, .repeat_penalty = 1.5f});
    const std::vector<float> l = {2.0f, 1.8f, -1.0f};
    EXPECT_EQ(s.sample(l), 0);
    s.accept(0);
    EXPECT_EQ(s.sample(l), 1);  // 2.0 / 1.5 < 1.8
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
    const auto l = logits_of({0.1f, 0.2f, 0.3f, 0.4f});
    auto run = [&](std::uint64_t seed) {
        Sampler s({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = seed});
        std::vector<int> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(l));
        return out;
    };
    EXPECT_EQ(run(42), run(42));
    EXPECT_NE(run(42), run(43));
}

TEST(Sampler, UniformIsInHalfOpenUnitInterval) {
    Sampler s({.seed = 5});
    for (int i = 0; i < 100000; ++i) {
        const float u = s.next_uniform();
        ASSERT_GE(u, 0.0f);
        ASSERT_LT(u, 1.0f);
    }
}

TEST(Sampler, RejectsBadParameters) {
    EXPECT_THROW(Sampler({.temperature = -1.0f}), Error);
    EXPECT_THROW(Sampler({.top_k = -1}), Error);
    EXPECT_THROW(Sampler({.top_p = 0.0f}), Error);
    EXPECT_THROW(Sampler({.top_p = 1.5f}), Error);
    EXPECT_THROW(Sampler({.min_p = 1.0f}), Error);
    EXPECT_THROW(Sampler({.repeat_penalty = 0.0f}), Error);
    EXPECT_THROW(Sampler({.repeat_penalty = 1e-30f}), Error) << "divides a logit of 10 past the float range";
    EXPECT_THROW(Sampler({.repeat_penalty = 1e4f}), Error);
    EXPECT_THROW(Sampler({.temperature = NAN}), Error);
    EXPECT_THROW(Sampler::check({.top_p = NAN}), Error);
}

}  // namespace
}  // namespace forge
