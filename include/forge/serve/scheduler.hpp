#pragma once
// Generation slots for the server: N models (each with its own KV cache, all sharing one weight mapping)
// and a first-come, first-served queue for the requests that find them all busy. A slot is handed
// straight to the longest-waiting request when it frees, so a burst of newcomers cannot overtake it.
//
// A slot keeps its sequence after a request: a request that finds several slots free takes the one whose
// tokens share the longest prefix with its prompt (the previous turn of its conversation), when that is
// at least half the prompt, else the least recently used slot, and feeds only what it does not share
// (AnyModel::keep_prefix_of).
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
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/model/any_model.hpp"

namespace forge::serve {

class Scheduler {
public:
    explicit Scheduler(std::vector<std::unique_ptr<AnyModel>> models) : models_(std::move(models)) {
        if (models_.empty()) throw Error("the scheduler needs at least one model");
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
        Waiter me;
        if (!free_.empty() && queue_.empty()) {
            auto best = std::max_element(free_.begin(), free_.end(), [&](AnyModel* a, AnyModel* b) {
                return a->common_prefix(prompt) < b->common_prefix(prompt);  // the first of equals: least recently freed
            });
            // A prefix that is only a chat template's opening is not worth another conversation's cache.
            if (2 * (*best)->common_prefix(prompt) < prompt.size()) best = free_.begin();
            me.model = *best;
            free_.erase(best);
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
        ++busy_;
        return Lease(this, me.model);
    }

    // Wakes every waiter without a slot; leases already given out stay valid.
    void stop() {
        std::lock_guard lock(mu_);
        stopping_ = true;
        for (Waiter* w : queue_) w->cv.notify_one();
    }

    struct Stats {
        int slots, busy, queued;
        std::uint64_t served;
        std::size_t cached_tokens;  // held by the free slots, for requests to reuse
    };
    Stats stats() const {
        std::lock_guard lock(mu_);
        std::size_t cached = 0;
        for (const AnyModel* m : free_) cached += m->tokens().size();
        return {int(models_.size()), busy_, int(queue_.size()), served_, cached};
    }

    // Every slot's model has the same context length.
    int context() const { return models_.front()->context(); }
    const AnyModel& front() const { return *models_.front(); }

private:
    static constexpr auto kPollInterval = std::chrono::milliseconds(100);

    struct Waiter {
        AnyModel* model = nullptr;
        std::condition_variable cv;
    };

    void release(AnyModel* m) {
        std::lock_guard lock(mu_);
        --busy_;
        ++served_;
        if (queue_.empty()) {
            free_.push_back(m);  // the most recently freed last
            return;
        }
        Waiter* next = queue_.front();
        queue_.pop_front();
        next->model = m;
        next->cv.notify_one();
    }

    std::vector<std::unique_ptr<AnyModel>> models_;
    mutable std::mutex mu_;
    std::vector<AnyModel*> free_;
    std::deque<Waiter*> queue_;
    int busy_ = 0;
    std::uint64_t served_ = 0;
    bool stopping_ = false;
};

}  // namespace forge::serve
