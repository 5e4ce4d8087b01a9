#pragma once
// A stand-in model for server tests: it "predicts" a scripted token sequence (greedy sampling picks
// it), and each decode step waits for the test to allow it, so a test can hold a generation at an exact
// point and look at what the client has received by then. The bundled model's file and tokenizer supply
// everything else.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "forge/gguf/model_shape.hpp"
#include "forge/model/any_model.hpp"
#include "forge/serve/scheduler.hpp"
#include "forge/tokenizer/tokenizer.hpp"
#include "testdata.hpp"

namespace forge::test {

// The test's handle on its fake models: holds every decode step until opened, and logs the prompts.
class Gate {
public:
    // Lets every decode step run, now and from now on.
    void open() {
        std::lock_guard lock(mu_);
        open_ = true;
        cv_.notify_all();
    }
    // Blocks a decode step until it is allowed; bounded, so a broken test fails instead of hanging.
    void pass() {
        std::unique_lock lock(mu_);
        ++waiting_;
        cv_.notify_all();
        const bool ok = cv_.wait_for(lock, std::chrono::seconds(20), [&] { return open_; });
        --waiting_;
        if (!ok) throw Error("fake model: decode step never allowed");
        ++passed_;
        cv_.notify_all();
    }
    // Waits until some decode step is blocked at the gate; false after the timeout.
    bool wait_for_blocked(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [&] { return waiting_ > 0; });
    }
    int passed() const {
        std::lock_guard lock(mu_);
        return passed_;
    }
    // The length of every prompt prefilled so far, in the order generations began.
    void record_prompt(std::size_t length) {
        std::lock_guard lock(mu_);
        prompts_.push_back(length);
    }
    std::vector<std::size_t> prompts() const {
        std::lock_guard lock(mu_);
        return prompts_;
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
    int passed_ = 0, waiting_ = 0;
    std::vector<std::size_t> prompts_;
};

class FakeModel final : public AnyModel {
public:
    FakeModel(const gguf::File& file, std::vector<std::int32_t> script, Gate& gate, int context)
        : file_(file), shape_(gguf::model_shape(file)), script_(std::move(script)), gate_(gate), context_(context),
          logits_(std::size_t(shape_.vocab)) {}

    std::span<const float> logits() const override { return logits_; }
    int position() const override { return pos_; }
    int context() const override { return context_; }
    int threads() const override { return 1; }
    std::size_t kv_cache_bytes() const override { return 0; }
    const ModelShape& shape() const override { return shape_; }
    const gguf::File& file() const override { return file_; }
    std::string_view compiled_name() const override { return "fake"; }
    std::string_view kernels() const override { return "fake"; }

private:
    // The server cuts a slot's sequence back before each request (to the prefix it reuses): the next feed
    // is that request's prompt, and the feeds after it are decode steps.
    std::span<const float> feed(std::span<const std::int32_t> tokens, float*, const AbortCheck&) override {
        if (prompt_next_) gate_.record_prompt(std::size_t(pos_) + tokens.size());
        else gate_.pass();
        prompt_next_ = false;
        pos_ += int(tokens.size());
        std::fill(logits_.begin(), logits_.end(), 0.0f);
        logits_[std::size_t(script_[std::size_t(step_++) % script_.size()])] = 10.0f;
        return logits_;
    }
    void cut(int n) override {
        pos_ = n;
        step_ = 0;
        prompt_next_ = true;
    }
    void copy_prefix(AnyModel&, int) const override { throw Error("the fake model holds no cache to copy"); }

    gguf::File file_;
    ModelShape shape_;
    std::vector<std::int32_t> script_;
    Gate& gate_;
    int context_;
    std::vector<float> logits_;
    int pos_ = 0, step_ = 0;
    bool prompt_next_ = true;
};

// The bundled model's file and tokenizer, and `slots` fake models that write `script` over and over.
struct FakeBackend {
    gguf::File file = gguf::File::open(model_path("stories260K.gguf"));
    Tokenizer tok = Tokenizer::from_gguf(file);
    Gate gate;
    std::unique_ptr<serve::Scheduler> scheduler;

    FakeBackend(int slots, const std::string& script_text, int context = 128) {
        std::vector<std::unique_ptr<AnyModel>> models;
        for (int i = 0; i < slots; ++i) models.push_back(std::make_unique<FakeModel>(file, script(script_text), gate, context));
        scheduler = std::make_unique<serve::Scheduler>(std::move(models));
    }
    // Ids whose decode is `text` (byte tokens spell what the vocabulary has no piece for).
    std::vector<std::int32_t> script(const std::string& text) const { return tok.encode(text, false); }
};

}  // namespace forge::test
