#pragma once
// Sequences of one model fed from several threads, their feeds gathered into shared passes (continuous
// batching). Each thread generates on its own sequence as if it were alone (generate(): its sampler,
// stop strings, grammar and cancellation); a pass feeds every waiting sequence at once, so N decoding
// sequences read the weights once per step instead of N times, and each gets the logits it would get
// alone (the CPU path's passes give every token the same bits whatever else they hold).
//
// A pass holds every waiting sequence's next token and fills the rest of `pass_tokens` with waiting
// prompts, oldest first: a long prompt is fed in chunks beside the others' decode steps instead of
// stalling them. Before a pass the gatherer waits briefly for the sequences of the last pass to come back
// (they are sampling their next token), so streams keep sharing passes instead of alternating.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/model/any_model.hpp"
#include "forge/model/prefill.hpp"

namespace forge {

struct BatchingOptions {
    int pass_tokens = 256;  // tokens per pass, over all sequences: decode steps first, then prompt chunks
    // After a pass, how long the next waits for the sequences just fed to come back: as long as they keep
    // arriving within `gather_window` of each other, up to `gather_limit` in all.
    std::chrono::microseconds gather_window{2000};
    std::chrono::microseconds gather_limit{20000};
};

namespace detail {

// The thread that runs the passes, and the feeds waiting for one.
class PassGatherer {
public:
    explicit PassGatherer(BatchingOptions opt) : opt_(checked(opt)), thread_([this] { run(); }) {}
    PassGatherer(const PassGatherer&) = delete;
    PassGatherer& operator=(const PassGatherer&) = delete;
    ~PassGatherer() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }

    // Feeds `tokens` to `model` in the passes to come and returns when all are fed. `abort` is asked
    // before each pass that would hold some of them (on the passes' thread).
    void feed(AnyModel& model, std::span<const std::int32_t> tokens, const AbortCheck& abort) {
        Waiting w{.model = &model, .tokens = tokens, .abort = &abort, .done = 0, .finished = false, .error = {}};
        std::unique_lock lock(mu_);
        waiting_.push_back(&w);
        last_arrival_ = clock::now();
        wake_.notify_all();
        fed_.wait(lock, [&] { return w.finished; });
        if (w.error) std::rethrow_exception(w.error);
    }

private:
    using clock = std::chrono::steady_clock;

    static BatchingOptions checked(BatchingOptions opt) {
        if (opt.pass_tokens < 1) throw Error("BatchingOptions::pass_tokens must be at least 1, not " + std::to_string(opt.pass_tokens));
        return opt;
    }

    struct Waiting {
        AnyModel* model;
        std::span<const std::int32_t> tokens;
        const AbortCheck* abort;
        std::size_t done = 0;
        bool finished = false;
        std::exception_ptr error;
    };

    void run() {
        std::unique_lock lock(mu_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
            if (waiting_.empty()) return;  // stopping: a feed waits only while its sequence lives
            gather(lock);
            const std::vector<Waiting*> pass(waiting_.begin(), waiting_.end());
            lock.unlock();
            std::vector<std::exception_ptr> outcome(pass.size());
            const std::vector<std::size_t> take = portions(pass, outcome);
            std::vector<AnyModel::Feed> feeds;
            for (std::size_t i = 0; i < pass.size(); ++i)
                if (take[i] > 0) feeds.push_back({pass[i]->model, pass[i]->tokens.subspan(pass[i]->done, take[i])});
            std::exception_ptr failed;
            try {
                AnyModel::feed_together(feeds);
            } catch (...) {
                failed = std::current_exception();
            }
            lock.lock();
            last_pass_.clear();
            for (std::size_t i = 0; i < pass.size(); ++i) {
                Waiting& w = *pass[i];
                if (take[i] > 0) {
                    w.done += take[i];
                    outcome[i] = failed;
                }
                if (!outcome[i] && w.done < w.tokens.size()) continue;
                w.error = outcome[i];
                w.finished = true;
                if (!w.error) last_pass_.push_back(w.model);
                std::erase(waiting_, &w);
            }
            fed_.notify_all();
        }
    }

    // How many tokens of each waiting feed this pass holds: one each first (decode steps, and the start
    // of each prompt), then the rest of the room to prompts in arrival order. A feed whose abort says
    // stop gets none and its outcome becomes Cancelled (or what the check threw).
    std::vector<std::size_t> portions(const std::vector<Waiting*>& pass, std::vector<std::exception_ptr>& outcome) const {
        std::vector<std::size_t> take(pass.size(), 0);
        std::size_t room = std::size_t(opt_.pass_tokens);
        for (std::size_t i = 0; i < pass.size() && room > 0; ++i) {
            const Waiting& w = *pass[i];
            try {
                if (*w.abort && (*w.abort)()) throw Cancelled(w.model->position());
            } catch (...) {  // a check that throws ends its own feed, not the passes' thread
                outcome[i] = std::current_exception();
                continue;
            }
            take[i] = 1;
            --room;
        }
        for (std::size_t i = 0; i < pass.size() && room > 0; ++i) {
            if (take[i] == 0) continue;
            const std::size_t more = std::min(room, pass[i]->tokens.size() - pass[i]->done - 1);
            take[i] += more;
            room -= more;
        }
        return take;
    }

    // Waits, lock held, until every sequence the last pass finished feeding is waiting again, or none has
    // arrived for gather_window, or gather_limit has passed.
    void gather(std::unique_lock<std::mutex>& lock) {
        const auto limit = clock::now() + opt_.gather_limit;
        for (;;) {
            const bool all_back = std::all_of(last_pass_.begin(), last_pass_.end(), [&](const AnyModel* m) {
                return std::any_of(waiting_.begin(), waiting_.end(), [&](const Waiting* w) { return w->model == m; });
            });
            const auto until = std::min(limit, last_arrival_ + opt_.gather_window);
            if (all_back || stopping_ || clock::now() >= until) return;
            wake_.wait_until(lock, until);
        }
    }

    BatchingOptions opt_;
    std::mutex mu_;
    std::condition_variable wake_;  // the passes' thread: a feed arrived, or stop
    std::condition_variable fed_;   // the feeding threads: a pass finished
    std::deque<Waiting*> waiting_;  // in arrival order
    std::vector<const AnyModel*> last_pass_;  // the sequences whose feeds the last pass finished
    clock::time_point last_arrival_{};
    bool stopping_ = false;
    std::thread thread_;  // last: it starts once everything above exists
};

// One sequence whose feeds go through the gatherer; everything else is its model's.
class BatchedSequence final : public AnyModel {
public:
    BatchedSequence(std::unique_ptr<AnyModel> model, std::shared_ptr<PassGatherer> gatherer)
        : model_(std::move(model)), gatherer_(std::move(gatherer)) {}

    std::span<const float> logits() const override { return model_->logits(); }
    int position() const override { return model_->position(); }
    int context() const override { return model_->context(); }
    int threads() const override { return model_->threads(); }
    std::size_t kv_cache_bytes() const override { return model_->kv_cache_bytes(); }
    const ModelShape& shape() const override { return model_->shape(); }
    const gguf::File& file() const override { return model_->file(); }
    std::string_view compiled_name() const override { return model_->compiled_name(); }
    std::string_view device_name() const override { return model_->device_name(); }
    std::string_view kernels() const override { return model_->kernels(); }
    bool row_length_kernels() const override { return model_->row_length_kernels(); }

private:
    std::span<const float> feed(std::span<const std::int32_t> tokens, float* all_logits, const AbortCheck& abort) override {
        // Checked here, so that a feed that cannot be fed fails alone rather than the pass it would join.
        require_feedable(shape(), position(), context(), tokens);
        if (all_logits) return model_->prefill(tokens, all_logits, abort);  // every token's logits: a pass of its own
        gatherer_->feed(*model_, tokens, abort);
        return model_->logits();
    }
    void cut(int n) override { model_->truncate(n); }
    void copy_prefix(AnyModel& to, int n) const override {
        auto* other = dynamic_cast<BatchedSequence*>(&to);
        if (!other) throw Error("cannot copy a prefix from a batched sequence to a model outside its batch");
        model_->copy_prefix_to(*other->model_, n);
    }

    std::unique_ptr<AnyModel> model_;
    std::shared_ptr<PassGatherer> gatherer_;
};

}  // namespace detail

// `count` sequences of `model` (it and count - 1 of its new_sequence()s) whose feeds, from any threads,
// share passes. An error where the model's backend holds one sequence per model (has_sequences()).
inline std::vector<std::unique_ptr<AnyModel>> batched_sequences(std::unique_ptr<AnyModel> model, int count, BatchingOptions opt = {}) {
    if (count < 1) throw Error("batched_sequences needs at least one sequence, not " + std::to_string(count));
    if (!model->has_sequences()) (void)model->new_sequence();  // throws, naming the backend
    auto gatherer = std::make_shared<detail::PassGatherer>(opt);
    std::vector<std::unique_ptr<AnyModel>> sequences;
    for (int i = 1; i < count; ++i) sequences.push_back(std::make_unique<detail::BatchedSequence>(model->new_sequence(), gatherer));
    sequences.insert(sequences.begin(), std::make_unique<detail::BatchedSequence>(std::move(model), gatherer));
    return sequences;
}

}  // namespace forge
