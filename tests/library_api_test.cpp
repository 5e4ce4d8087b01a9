// The library's face, as a downstream program uses it: sequences that continue, truncate and copy on
// both paths; generation that continues where it stopped, stops where the model ends its text, reports
// log-probabilities and can be aborted, prefill included; LanguageModel's prefix reuse; a movable Model.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "forge/forge.hpp"
#include "error_of.hpp"
#include "testdata.hpp"

namespace forge {
namespace {

using test::error_of;
using test::model_path;

const std::string kStories = model_path("stories260K.gguf");

std::unique_ptr<AnyModel> open_stories(Backend b, ModelOptions opt = {}) {
    opt.backend = b;
    opt.threads = 2;
    return open_model(gguf::File::open(kStories), opt);
}

GenerationParams greedy(int max_tokens) {
    GenerationParams p;
    p.max_tokens = max_tokens;
    p.sampling.temperature = 0.0f;
    return p;
}

class Sequences : public ::testing::TestWithParam<Backend> {
protected:
    const Tokenizer tok = Tokenizer::from_gguf(gguf::File::open(kStories));
    std::vector<std::int32_t> prompt = tok.encode("Once upon a time, a little dog", true);
};

TEST_P(Sequences, ContinuingGenerationEqualsOneLongGeneration) {
    auto whole = open_stories(GetParam());
    const auto one = generate(*whole, tok, prompt, greedy(40));
    ASSERT_EQ(one.tokens.size(), 40u);

    auto parts = open_stories(GetParam());
    auto first = generate(*parts, tok, prompt, greedy(15));
    ASSERT_EQ(first.tokens.size(), 15u);
    // Every generated token was fed: the sequence is the prompt and the 15 tokens.
    EXPECT_EQ(parts->position(), int(prompt.size()) + 15);
    const auto second = generate(*parts, tok, {}, greedy(25));
    EXPECT_EQ(second.prompt_tokens, 0);
    first.tokens.insert(first.tokens.end(), second.tokens.begin(), second.tokens.end());
    EXPECT_EQ(first.tokens, one.tokens);
    EXPECT_EQ(first.text + second.text, one.text);
    EXPECT_EQ(std::vector<std::int32_t>(parts->tokens().begin(), parts->tokens().end()),
              std::vector<std::int32_t>(whole->tokens().begin(), whole->tokens().end()));
}

TEST_P(Sequences, TruncateAndRefeedEqualsAFreshPrefill) {
    auto fresh = open_stories(GetParam());
    const auto full = fresh->prefill(prompt);
    const std::vector<float> want(full.begin(), full.end());

    auto m = open_stories(GetParam());
    const auto other = tok.encode("Once upon a time, a big red ball rolled", true);
    m->prefill(other);
    // The common prefix stays; the rest is fed again.
    const int kept = m->keep_prefix_of(prompt);
    ASSERT_GT(kept, 2);
    ASSERT_LT(kept, int(prompt.size()));
    EXPECT_EQ(m->position(), kept);
    EXPECT_TRUE(m->logits().empty());
    const auto refed = m->prefill(std::span(prompt).subspan(std::size_t(kept)));
    EXPECT_EQ(std::vector<float>(refed.begin(), refed.end()), want);
    EXPECT_EQ(std::vector<std::int32_t>(m->tokens().begin(), m->tokens().end()), prompt);
}

TEST_P(Sequences, ACopiedPrefixContinuesAsTheOriginalWould) {
    auto a = open_stories(GetParam());
    auto b = open_stories(GetParam());
    const auto logits = a->prefill(prompt);
    const std::vector<float> want(logits.begin(), logits.end());
    a->copy_prefix_to(*b, int(prompt.size()) - 3);
    EXPECT_EQ(b->position(), int(prompt.size()) - 3);
    const auto got = b->prefill(std::span(prompt).last(3));
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), want);
}

TEST_P(Sequences, BadTruncationsAndCopiesAreRefused) {
    auto a = open_stories(GetParam());
    a->prefill(prompt);
    EXPECT_THROW(a->truncate(int(prompt.size()) + 1), Error);
    EXPECT_THROW(a->truncate(-1), Error);
    auto small = open_stories(GetParam(), {.context = 4});
    EXPECT_THROW(a->copy_prefix_to(*small, 5), Error);
    auto other_backend = open_stories(GetParam() == Backend::cpu ? Backend::metal_emu : Backend::cpu);
    EXPECT_THROW(a->copy_prefix_to(*other_backend, 2), Error);
    EXPECT_EQ(a->position(), int(prompt.size()));
}

TEST_P(Sequences, AbortStopsALongPrefillBetweenLayersKeepingFinishedBatches) {
    auto m = open_stories(GetParam(), {.context = 512, .max_batch = 16});
    std::vector<std::int32_t> tokens(100);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::int32_t(3 + i % 500);
    // stories260K has 5 layers: a batch asks once before it and once per layer. Stop in the 4th batch's 3rd layer.
    int asked = 0;
    const int stop_at = 3 * 6 + 1 + 3;
    try {
        m->prefill(tokens, nullptr, [&] { return ++asked == stop_at; });
        FAIL() << "the prefill was not cancelled";
    } catch (const Cancelled& c) {
        EXPECT_EQ(c.position(), 48);
    }
    EXPECT_EQ(asked, stop_at);
    EXPECT_EQ(m->position(), 48);
    EXPECT_EQ(std::vector<std::int32_t>(m->tokens().begin(), m->tokens().end()), std::vector<std::int32_t>(tokens.begin(), tokens.begin() + 48));
    // The sequence goes on from there as if the rest had been fed in the first place.
    auto fresh = open_stories(GetParam(), {.context = 512, .max_batch = 16});
    const auto want = fresh->prefill(tokens);
    const std::vector<float> expected(want.begin(), want.end());
    const auto got = m->prefill(std::span(tokens).subspan(48));
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), expected);
}

INSTANTIATE_TEST_SUITE_P(Backends, Sequences, ::testing::Values(Backend::cpu, Backend::metal_emu),
                         [](const auto& info) { return info.param == Backend::cpu ? std::string("Cpu") : std::string("EmulatedMetal"); });

TEST(Abort, FromAnotherThreadEndsAPrefillAndTheGeneration) {
    auto m = open_stories(Backend::cpu, {.context = 512, .max_batch = 1});
    const Tokenizer tok = Tokenizer::from_gguf(m->file());
    std::vector<std::int32_t> prompt(500, 300);
    prompt[0] = tok.bos();
    std::atomic<bool> stop{false}, started{false};
    GenerationParams p = greedy(10);
    p.abort = [&] {
        started = true;
        return stop.load();
    };
    std::thread canceller([&] {
        while (!started) std::this_thread::yield();
        stop = true;
    });
    const auto r = generate(*m, tok, prompt, p);
    canceller.join();
    EXPECT_EQ(r.finish, FinishReason::cancelled);
    EXPECT_TRUE(r.tokens.empty());
    EXPECT_LT(m->position(), int(prompt.size()));
}

TEST(Generate, Stories260KStopsAtTheEndOfAStoryAsLlama2cDoes) {
    // llama2.c ends generation when the model emits BOS, which is how stories260K ends a story.
    auto m = open_stories(Backend::cpu);
    const Tokenizer tok = Tokenizer::from_gguf(m->file());
    const auto r = generate(*m, tok, std::vector<std::int32_t>{tok.bos()}, greedy(500));
    EXPECT_EQ(r.finish, FinishReason::eos);
    EXPECT_LT(r.tokens.size(), 500u);
    EXPECT_EQ(r.text.rfind("Once upon a time", 0), 0u) << r.text;
    // The token that ended it was BOS: the most likely next token after the last one fed.
    const auto logits = m->logits();
    EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), tok.bos());
    EXPECT_EQ(std::count(r.tokens.begin(), r.tokens.end(), tok.bos()), 0);
}

TEST(Generate, StopIdsEndGenerationAndStayOutOfTheText) {
    auto m = open_stories(Backend::cpu);
    const Tokenizer tok = Tokenizer::from_gguf(m->file());
    const auto prompt = tok.encode("Once upon a time", true);
    const auto free_run = generate(*m, tok, prompt, greedy(30));
    ASSERT_GT(free_run.tokens.size(), 10u);
    m->reset();
    GenerationParams p = greedy(30);
    p.stop_tokens = {free_run.tokens[6]};
    const auto r = generate(*m, tok, prompt, p);
    EXPECT_EQ(r.finish, FinishReason::eos);
    const auto first = std::find(free_run.tokens.begin(), free_run.tokens.end(), free_run.tokens[6]);
    EXPECT_EQ(r.tokens, std::vector<std::int32_t>(free_run.tokens.begin(), first));
}

TEST(Generate, LogprobsAreTheLogSoftmaxOfTheLogitsAtTemperatureOne) {
    auto m = open_stories(Backend::cpu);
    auto twin = open_stories(Backend::cpu);
    const Tokenizer tok = Tokenizer::from_gguf(m->file());
    const auto prompt = tok.encode("Once upon a time", true);
    GenerationParams p;
    p.max_tokens = 12;
    p.sampling = {.temperature = 0.7f, .top_k = 20, .seed = 11};  // the logprob is the model's, not the filtered distribution's
    p.top_logprobs = 5;
    std::vector<TokenEvent> events;
    std::vector<std::vector<TokenLogprob>> tops;
    const auto r = generate(*m, tok, prompt, p, [&](const TokenEvent& e) {
        events.push_back(e);
        tops.emplace_back(e.top.begin(), e.top.end());
        return true;
    });
    ASSERT_EQ(r.tokens.size(), 12u);
    std::span<const float> logits = twin->prefill(prompt);
    for (std::size_t i = 0; i < r.tokens.size(); ++i) {
        double max = -INFINITY, sum = 0;
        for (const float l : logits) max = std::max(max, double(l));
        for (const float l : logits) sum += std::exp(double(l) - max);
        const auto logprob = [&](std::int32_t id) { return double(logits[std::size_t(id)]) - max - std::log(sum); };
        EXPECT_EQ(events[i].id, r.tokens[i]);
        EXPECT_NEAR(events[i].logprob, logprob(r.tokens[i]), 1e-4) << "token " << i;
        EXPECT_EQ(r.logprobs[i], events[i].logprob);
        ASSERT_EQ(tops[i].size(), 5u);
        std::vector<std::int32_t> order(logits.size());
        for (std::size_t k = 0; k < order.size(); ++k) order[k] = std::int32_t(k);
        std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return logits[std::size_t(a)] > logits[std::size_t(b)]; });
        for (std::size_t k = 0; k < 5; ++k) {
            EXPECT_EQ(tops[i][k].id, order[k]);
            EXPECT_NEAR(tops[i][k].logprob, logprob(order[k]), 1e-4);
        }
        logits = twin->decode(r.tokens[i]);
    }
}

TEST(Generate, EventTextsAddUpToTheResultAndHoldBackStopStrings) {
    auto m = open_stories(Backend::cpu);
    const Tokenizer tok = Tokenizer::from_gguf(m->file());
    GenerationParams p = greedy(60);
    p.stop = {"Lily"};
    std::string streamed;
    const auto r = generate(*m, tok, tok.encode("Once upon a time", true), p, [&](const TokenEvent& e) {
        streamed += e.text;
        return true;
    });
    EXPECT_EQ(r.finish, FinishReason::stop);
    EXPECT_EQ(streamed, r.text);
    EXPECT_EQ(r.text, ", there was a little girl named ");
}

TEST(Generate, ACallbackReturningFalseStopsAtThatToken) {
    auto m = open_stories(Backend::cpu);
    const Tokenizer tok = Tokenizer::from_gguf(m->file());
    int seen = 0;
    const auto r = generate(*m, tok, tok.encode("Once upon a time", true), greedy(50), [&](const TokenEvent&) { return ++seen < 4; });
    EXPECT_EQ(r.finish, FinishReason::cancelled);
    EXPECT_EQ(seen, 4);
    EXPECT_EQ(r.tokens.size(), 4u);
}

TEST(Generate, ContinuingAfterTheLastTokenWasTruncatedAwayIsRefused) {
    auto m = open_stories(Backend::cpu);
    const Tokenizer tok = Tokenizer::from_gguf(m->file());
    m->prefill(tok.encode("Once upon a time", true));
    m->truncate(2);
    EXPECT_THROW(generate(*m, tok, {}, greedy(5)), Error);
    auto empty = open_stories(Backend::cpu);
    EXPECT_THROW(generate(*empty, tok, {}, greedy(5)), Error);
}

TEST(LanguageModel, CompleteReusesThePrefixTheModelHolds) {
    auto lm = LanguageModel::open(kStories, {.threads = 2});
    const auto first_prompt = lm.tokenize("Once upon a time, there was a dog");
    const auto first = lm.complete(first_prompt, greedy(10));
    EXPECT_EQ(first.prompt_tokens, int(first_prompt.size()));
    // The next prompt extends what the model holds (the first prompt and its reply): only the new text is fed.
    auto next_prompt = std::vector<std::int32_t>(lm.model().tokens().begin(), lm.model().tokens().end());
    const auto more = lm.tokenize(" The dog was happy.", false);
    next_prompt.insert(next_prompt.end(), more.begin(), more.end());
    const auto second = lm.complete(next_prompt, greedy(10));
    EXPECT_EQ(second.prompt_tokens, int(more.size()));
    // Identical to a model that computed it all from scratch.
    auto fresh = LanguageModel::open(kStories, {.threads = 2});
    const auto again = fresh.complete(next_prompt, greedy(10));
    EXPECT_EQ(again.prompt_tokens, int(next_prompt.size()));
    EXPECT_EQ(again.tokens, second.tokens);
}

TEST(LanguageModel, ChatPromptUsesTheModelsFormatAndANewSequenceSharesTheWeights) {
    auto lm = LanguageModel::open(kStories, {.threads = 1});
    EXPECT_EQ(lm.chat_format(), chat::Format::chatml);  // stories260K carries no template: the fallback
    const std::vector<chat::Message> messages = {{"user", "Hi"}};
    EXPECT_EQ(lm.detokenize(lm.chat_prompt(messages)), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    auto seq = lm.new_sequence();
    EXPECT_EQ(seq->position(), 0);
    EXPECT_EQ(seq->file().bytes().data(), lm.model().file().bytes().data());
}

TEST(Model, MovesWithItsCacheAndThreads) {
    std::vector<Model<>> models;
    models.emplace_back(gguf::File::open(kStories), ModelOptions{.threads = 2});
    const std::vector<std::int32_t> prompt = {1, 400, 30, 200};
    const auto want = models[0].prefill(prompt);
    const std::vector<float> expected(want.begin(), want.end());
    models[0].truncate(2);
    std::optional<Model<>> moved(std::move(models[0]));
    models.clear();
    EXPECT_EQ(moved->position(), 2);
    EXPECT_EQ(moved->threads(), 2);
    const auto got = moved->prefill(std::span(prompt).subspan(2));
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), expected);
}

// Sequences of one model fed in shared passes get, bit for bit, the logits each gets alone: prompts of
// different lengths (one spanning several passes), then greedy decode steps together. Weight types F32,
// Q8_0, Q4_K/Q6_K mixes and the per-head norms of qwen3. Passes stay under the AVX-512 batch kernels'
// 8 tokens, so a token takes the same kernels together as alone; a longer pass takes them where the
// sequence alone might not, and agrees to rounding (ModelEntryPoints.BatchKernelPrefillAgreesWithDecode).
class SharedPasses : public ::testing::TestWithParam<const char*> {
protected:
    static constexpr int kPassTokens = 7;
    static constexpr ModelOptions kOptions{.context = 128, .threads = 2, .max_batch = kPassTokens};
    const gguf::File file = gguf::File::open(model_path(GetParam()));

    // A prompt of n tokens for sequence s (ids spread over the vocabulary).
    static std::vector<std::int32_t> prompt_of(int s, int n, int vocab) {
        std::vector<std::int32_t> p;
        for (int i = 0; i < n; ++i) p.push_back(std::int32_t((11 * i + 37 * s + 1) % vocab));
        return p;
    }
    static std::vector<float> copy(std::span<const float> v) { return {v.begin(), v.end()}; }
};

TEST_P(SharedPasses, SequencesFedTogetherGetTheLogitsEachGetsAlone) {
    std::vector<std::unique_ptr<AnyModel>> together, alone;
    together.push_back(open_model(file, kOptions));
    for (int s = 0; s < 3; ++s) {
        if (s > 0) together.push_back(together[0]->new_sequence());
        alone.push_back(open_model(file, kOptions));
    }
    const int vocab = together[0]->shape().vocab;
    const std::vector<std::vector<std::int32_t>> prompts = {prompt_of(0, 5, vocab), prompt_of(1, 40, vocab), prompt_of(2, 1, vocab)};
    std::vector<AnyModel::Feed> feeds;
    for (int s = 0; s < 3; ++s) feeds.push_back({together[std::size_t(s)].get(), prompts[std::size_t(s)]});
    AnyModel::feed_together(feeds);
    std::vector<std::int32_t> next(3);
    for (int step = 0; step < 12; ++step) {
        for (std::size_t s = 0; s < 3; ++s) {
            const auto want = copy(step == 0 ? alone[s]->prefill(prompts[s]) : alone[s]->decode(next[s]));
            ASSERT_EQ(copy(together[s]->logits()), want) << "sequence " << s << ", step " << step;
            next[s] = std::int32_t(std::max_element(want.begin(), want.end()) - want.begin());
        }
        for (std::size_t s = 0; s < 3; ++s) feeds[s].tokens = std::span(&next[s], 1);
        AnyModel::feed_together(feeds);
    }
    for (std::size_t s = 0; s < 3; ++s) EXPECT_EQ(together[s]->position(), alone[s]->position() + 1);
}

TEST_P(SharedPasses, SequencesOfDifferentModelsOrFedTwiceAreRefused) {
    auto a = open_model(file, kOptions), b = open_model(file, kOptions);
    const std::vector<std::int32_t> one = {1};
    const AnyModel::Feed twice[] = {{a.get(), one}, {a.get(), one}};
    EXPECT_NE(error_of([&] { AnyModel::feed_together(twice); }).find("fed twice"), std::string::npos);
    const AnyModel::Feed strangers[] = {{a.get(), one}, {b.get(), one}};
    EXPECT_NE(error_of([&] { AnyModel::feed_together(strangers); }).find("one model"), std::string::npos);
    EXPECT_EQ(a->position() + b->position(), 0);
}

// Threads generating on batched sequences, each with its own prompt, sampler and seed, get exactly
// what each gets alone: while one thread's long prompt goes in chunks, another is cancelled in its
// prompt, and the rest decode.
TEST_P(SharedPasses, ThreadsOnBatchedSequencesGenerateWhatEachGeneratesAlone) {
    const Tokenizer tok = Tokenizer::from_gguf(file);
    const int vocab = int(tok.vocab().size());
    auto sequences = batched_sequences(open_model(file, kOptions), 5, {.pass_tokens = kPassTokens});
    const std::vector<int> lengths = {3, 9, 100, 2, 60};  // the third: many passes of chunks; the fifth is cancelled
    std::vector<GenerationResult> got(5);
    std::vector<std::thread> threads;
    for (int s = 0; s < 5; ++s)
        threads.emplace_back([&, s] {
            GenerationParams p;
            p.max_tokens = 20;
            p.sampling.temperature = 0.8f;
            p.sampling.seed = std::uint64_t(100 + s);
            p.stop_tokens = {-1};  // random weights: no end-of-text token may cut a run short of the others
            if (s == 4) p.abort = [n = 0]() mutable { return ++n == 3; };  // before its third pass
            got[std::size_t(s)] = generate(*sequences[std::size_t(s)], tok, prompt_of(s, lengths[std::size_t(s)], vocab), p);
        });
    for (auto& t : threads) t.join();
    for (int s = 0; s < 4; ++s) {
        auto alone = open_model(file, kOptions);
        GenerationParams p;
        p.max_tokens = 20;
        p.sampling.temperature = 0.8f;
        p.sampling.seed = std::uint64_t(100 + s);
        p.stop_tokens = {-1};
        const auto want = generate(*alone, tok, prompt_of(s, lengths[std::size_t(s)], vocab), p);
        EXPECT_EQ(got[std::size_t(s)].tokens, want.tokens) << "sequence " << s;
        EXPECT_EQ(std::vector<std::int32_t>(sequences[std::size_t(s)]->tokens().begin(), sequences[std::size_t(s)]->tokens().end()),
                  std::vector<std::int32_t>(alone->tokens().begin(), alone->tokens().end()));
    }
    EXPECT_EQ(got[4].finish, FinishReason::cancelled);
    // Two passes held some of its prompt: it keeps them, and says so.
    EXPECT_GE(sequences[4]->position(), 2);
    EXPECT_LT(sequences[4]->position(), 60);
    EXPECT_EQ(int(sequences[4]->tokens().size()), sequences[4]->position());
}

INSTANTIATE_TEST_SUITE_P(Models, SharedPasses,
                         ::testing::Values("stories260K.gguf", "synth-qwen2-q8_0.gguf", "synth-llama256-Q4_K_M.gguf", "synth-qwen3-f32.gguf"),
                         [](const auto& info) {
                             std::string n = info.param;
                             n = n.substr(0, n.find('.'));
                             std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
                             return n;
                         });

TEST(SharedPasses, ABackendWithOneSequencePerModelSaysSo) {
    auto gpu = open_stories(Backend::metal_emu);
    EXPECT_FALSE(gpu->has_sequences());
    EXPECT_NE(error_of([&] { (void)batched_sequences(std::move(gpu), 2); }).find("one sequence per model"), std::string::npos);
}

TEST(ModelOptions, ZeroThreadsMeansOnePerHardwareThread) {
    EXPECT_EQ(resolve_threads(0), std::max(1, int(std::thread::hardware_concurrency())));
    EXPECT_THROW(resolve_threads(-1), Error);
}

TEST(SamplerParams, DefaultsSampleTheModelsDistributionWithARandomSeed) {
    const SamplerParams p;
    EXPECT_EQ(p.temperature, 1.0f);
    EXPECT_EQ(p.top_k, 0);
    EXPECT_EQ(p.top_p, 1.0f);
    EXPECT_EQ(p.min_p, 0.0f);
    EXPECT_NE(Sampler(p).seed(), Sampler(p).seed());  // two draws of 64 bits
    EXPECT_EQ(Sampler({.seed = 9}).seed(), 9u);
}

}  // namespace
}  // namespace forge
