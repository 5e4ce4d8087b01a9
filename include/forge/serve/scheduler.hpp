#pragma once
// Generation slots for the server: N models (each with its own KV cache, all sharing one weight mapping)
// and a first-come, first-served queue for the requests that find them all busy. A slot is handed
// straight to the longest-waiting request when it frees, so a burst of newcomers cannot overtake it.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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

    // A slot's model for as long as the lease lives, reset to position 0.
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

    // Waits for a slot, in arrival order. `abandoned` is asked now and then while waiting; when it says
    // true (the client left) or the scheduler is stopping, the wait ends without a slot.
    std::optional<Lease> acquire(const std::function<bool()>& abandoned) {
        std::unique_lock lock(mu_);
        Waiter me;
        if (!free_.empty() && queue_.empty()) {
            me.model = free_.back();
            free_.pop_back();
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
        lock.unlock();
        me.model->reset();
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
    };
    Stats stats() const {
        std::lock_guard lock(mu_);
        return {int(models_.size()), busy_, int(queue_.size()), served_};
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
            free_.push_back(m);
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
