#pragma once
// The server's counters, exposed at GET /metrics in Prometheus' text format (version 0.0.4). Token counts
// and latencies are lock-free atomics, updated where the work happens; only the per-route request count,
// taken once per request, is a small map under a mutex. Route labels come from the fixed list of routes
// (anything else is "other"), so a client cannot grow the number of series.
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "forge/serve/scheduler.hpp"

namespace forge::serve {

// A histogram of durations in seconds over fixed buckets, from the fastest token to a long generation.
class Histogram {
public:
    static constexpr std::array<double, 15> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

    void observe(double seconds) {
        std::size_t i = 0;
        while (i < kBounds.size() && seconds > kBounds[i]) ++i;
        counts_[i].fetch_add(1, std::memory_order_relaxed);
        sum_.fetch_add(seconds, std::memory_order_relaxed);
    }

    // Buckets are cumulative in the format; _count is the +Inf bucket, so the two always agree.
    void write(std::string& out, std::string_view name, std::string_view help) const {
        out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) + " histogram\n";
        std::uint64_t total = 0;
        for (std::size_t i = 0; i <= kBounds.size(); ++i) {
            total += counts_[i].load(std::memory_order_relaxed);
            out += std::string(name) + "_bucket{le=\"" + (i < kBounds.size() ? number(kBounds[i]) : std::string("+Inf")) + "\"} " +
                   std::to_string(total) + "\n";
        }
        out += std::string(name) + "_sum " + number(sum_.load(std::memory_order_relaxed)) + "\n";
        out += std::string(name) + "_count " + std::to_string(total) + "\n";
    }

    static std::string number(double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.9g", v);
        return buf;
    }

private:
    std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> counts_{};  // per bucket, not cumulative; the last is +Inf
    std::atomic<double> sum_{0};
};

class Metrics {
public:
    // Counted as their work is done.
    std::atomic<std::uint64_t> prompt_tokens{0};         // prompt tokens of generation requests, cached ones included
    std::atomic<std::uint64_t> cached_prompt_tokens{0};  // of those, the ones a slot already held
    std::atomic<std::uint64_t> generated_tokens{0};
    Histogram time_to_first_token;  // from the request's arrival (queueing included) to its first generated token
    Histogram request_duration;     // of generation requests, from arrival to the end of the reply

    void count_request(std::string_view route, int status) {
        std::lock_guard lock(mu_);
        ++requests_[{std::string(route), status}];
    }

    // The exposition, with the scheduler's gauges as they are now.
    std::string text(const Scheduler::Stats& s) const {
        std::string out;
        const auto head = [&](const char* name, const char* type, const char* help) {
            out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
        };
        const auto sample = [&](const char* name, std::uint64_t v) { out += std::string(name) + " " + std::to_string(v) + "\n"; };
        head("forge_requests_total", "counter", "Requests answered, by route and HTTP status (499: the client left before a reply).");
        {
            std::lock_guard lock(mu_);
            for (const auto& [key, n] : requests_)
                out += "forge_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
        }
        head("forge_prompt_tokens_total", "counter", "Prompt tokens of generation requests, cached ones included.");
        sample("forge_prompt_tokens_total", prompt_tokens.load());
        head("forge_prompt_cached_tokens_total", "counter", "Prompt tokens reused from a slot's cache instead of computed.");
        sample("forge_prompt_cached_tokens_total", cached_prompt_tokens.load());
        head("forge_generated_tokens_total", "counter", "Tokens generated.");
        sample("forge_generated_tokens_total", generated_tokens.load());
        head("forge_requests_running", "gauge", "Requests holding a slot.");
        sample("forge_requests_running", std::uint64_t(s.busy));
        head("forge_requests_queued", "gauge", "Requests waiting for a slot.");
        sample("forge_requests_queued", std::uint64_t(s.queued));
        head("forge_slots", "gauge", "Generation slots.");
        sample("forge_slots", std::uint64_t(s.slots));
        head("forge_slots_cached_tokens", "gauge", "Tokens the free slots hold for later requests to reuse.");
        sample("forge_slots_cached_tokens", s.cached_tokens);
        time_to_first_token.write(out, "forge_time_to_first_token_seconds", "From a generation request's arrival to its first token.");
        request_duration.write(out, "forge_request_duration_seconds", "From a generation request's arrival to the end of its reply.");
        return out;
    }

private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, std::uint64_t> requests_;
};

}  // namespace forge::serve
