#pragma once
// Generation slots for the server: sequences (each a KV cache; on the CPU all of one model, fed in shared
// passes: batched_sequences), at most `running` of them generating at once, and a first-come,
// first-served queue for the requests beyond that. A freed slot goes straight to the longest-waiting
// request, so a burst of newcomers cannot overtake it.
//
// A slot keeps its sequence after a request: a request takes the free slot whose tokens share the longest
// prefix with its prompt (the previous turn of its conversation), when that is at least half the prompt,
// else the least recently used one, and feeds only what it does not share (AnyModel::keep_prefix_of). So
// slots beyond `running` are a prompt cache: conversations that pause keep their sequences until LRU
// evicts them.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/model/any_model.hpp"

namespace forge::serve {

class Scheduler {
public:
    // `running`: how many slots generate at once; 0 for all of them.
    explicit Scheduler(std::vector<std::unique_ptr<AnyModel>> models, int running = 0)
        : models_(std::move(models)), running_(running == 0 ? int(models_.size()) : running) {
        if (models_.empty()) throw Error("the scheduler needs at least one model");
        if (running_ < 1 || running_ > int(models_.size()))
            throw Error("the scheduler can run between 1 and " + std::to_string(models_.size()) + " slots at once, not " + std::to_string(running_));
        for (auto& m : models_) free_.push_back(m.get());
    }
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // A slot's model for as long as the lease lives, holding whatever its last request left.
    class Lease {
    public:
        Lease(Lease&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), model_(o.model_) {}
        Lease& operator=(Lease&&) = delete;
        ~Lease() {
            if (owner_) owner_->release(model_);
        }
        AnyModel& model() const { return *model_; }

    private:
        friend class Scheduler;
        Lease(Scheduler* owner, AnyModel* model) : owner_(owner), model_(model) {}
        Scheduler* owner_;
        AnyModel* model_;
    };

    // Waits for a slot, in arrival order; among free slots, the one holding the longest prefix of
    // `prompt`. `abandoned` is asked now and then while waiting; when it says true (the client left) or
    // the scheduler is stopping, the wait ends without a slot.
    std::optional<Lease> acquire(std::span<const std::int32_t> prompt, const std::function<bool()>& abandoned) {
        std::unique_lock lock(mu_);
        if (stopping_) return std::nullopt;
        Waiter me;
        me.prompt = prompt;
        if (busy_ < running_ && queue_.empty()) {
            me.model = take_slot(prompt);
            ++busy_;
        } else {
            queue_.push_back(&me);
            while (!me.model) {
                if (stopping_ || abandoned()) {
                    std::erase(queue_, &me);
                    return std::nullopt;
                }
                me.cv.wait_for(lock, kPollInterval);
            }
        }
        return Lease(this, me.model);
    }

    // Wakes every waiter without a slot; leases already given out stay valid.
    void stop() {
        std::lock_guard lock(mu_);
        stopping_ = true;
        for (Waiter* w : queue_) w->cv.notify_one();
    }

    struct Stats {
        int slots, running, busy, queued;  // `running`: the most that generate at once; `busy`: those generating
        std::uint64_t served;
        std::size_t cached_tokens;  // held by the free slots, for requests to reuse
    };
    Stats stats() const {
        std::lock_guard lock(mu_);
        std::size_t cached = 0;
        for (const AnyModel* m : free_) cached += m->tokens().size();
        return {int(models_.size()), running_, busy_, int(queue_.size()), served_, cached};
    }

    // Every slot's model has the same context length.
    int context() const { return models_.front()->context(); }
    const AnyModel& front() const { return *models_.front(); }

private:
    static constexpr auto kPollInterval = std::chrono::milliseconds(100);

    struct Waiter {
        std::span<const std::int32_t> prompt;
        AnyModel* model = nullptr;
        std::condition_variable cv;
    };

    // Takes the free slot for `prompt` (lock held; one is free). The lease that takes it counts in busy_
    // (a slot handed from one request to the next stays counted).
    AnyModel* take_slot(std::span<const std::int32_t> prompt) {
        auto best = std::max_element(free_.begin(), free_.end(), [&](AnyModel* a, AnyModel* b) {
            return a->common_prefix(prompt) < b->common_prefix(prompt);  // the first of equals: least recently freed
        });
        // A prefix that is only a chat template's opening is not worth another conversation's cache.
        if (2 * (*best)->common_prefix(prompt) < prompt.size()) best = free_.begin();
        AnyModel* m = *best;
        free_.erase(best);
        return m;
    }

    void release(AnyModel* m) {
        std::lock_guard lock(mu_);
        ++served_;
        free_.push_back(m);  // the most recently freed last
        if (queue_.empty()) {
            --busy_;
            return;
        }
        Waiter* next = queue_.front();
        queue_.pop_front();
        next->model = take_slot(next->prompt);
        next->cv.notify_one();
    }

    std::vector<std::unique_ptr<AnyModel>> models_;
    mutable std::mutex mu_;
    std::vector<AnyModel*> free_;
    std::deque<Waiter*> queue_;
    int running_;
    int busy_ = 0;
    std::uint64_t served_ = 0;
    bool stopping_ = false;
};

}  // namespace forge::serve
