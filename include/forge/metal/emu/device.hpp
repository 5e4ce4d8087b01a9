#pragma once
// The emulator executor: a metal::Device whose kernels are the compiled MSL of one library, run on the
// CPU. Launches execute when dispatched, in order, but a GPU may overlap those with no
// Encoder::barrier() between them: each dispatch's element accesses are checked against the others of
// its barrier interval (runtime.hpp's BarrierInterval; finish() ends one too). Every dispatch is checked
// before it runs (the kernel exists, and metal/dispatch_rules.hpp's rules). Threadgroups run one
// after another on the calling thread (a GPU gives no order among them, so neither may a kernel).
#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/metal/device.hpp"
#include "forge/metal/dispatch_rules.hpp"
#include "forge/metal/emu/library.hpp"
#include "forge/metal/emu/runtime.hpp"
#include "forge/metal_src/kernel.hpp"

namespace forge::metal::emu {

class HostBuffer final : public Buffer {
public:
    explicit HostBuffer(std::size_t bytes) : storage_(bytes), data_(storage_.data()), size_(bytes) {}
    // Kernels only read wrapped memory (their parameters for it are const-qualified).
    HostBuffer(const std::byte* data, std::size_t bytes) : data_(const_cast<std::byte*>(data)), size_(bytes) {}
    std::byte* contents() override { return data_; }
    std::size_t size() const override { return size_; }
    // The barrier check's record per 2 bytes; none for wrapped memory, which no dispatch writes, so reads
    // of it cannot conflict. Zeroed pages from calloc: only what kernels touch costs memory and time (a
    // batch's logits buffer is large, a decode step touches one row).
    DispatchStamp* stamps() {
        if (storage_.empty()) return nullptr;
        if (!stamps_) {
            stamps_.reset(static_cast<DispatchStamp*>(std::calloc((size_ + 1) / 2, sizeof(DispatchStamp))));
            if (!stamps_) throw Error("metal emulator: out of memory for the barrier check of a " + std::to_string(size_) + "-byte buffer");
        }
        return stamps_.get();
    }

private:
    std::vector<std::byte> storage_;
    std::byte* data_;
    std::size_t size_;
    struct Free {
        void operator()(DispatchStamp* p) const { std::free(p); }
    };
    std::unique_ptr<DispatchStamp, Free> stamps_;
};

class EmuDevice;

class EmuEncoder final : public Encoder {
public:
    EmuEncoder(std::span<const metal_src::KernelSource> sources, const LibraryTable& table)
        : sources_(sources), table_(table) {}

    void set_kernel(std::string_view name) override {
        source_ = nullptr;
        entry_ = nullptr;
        for (const auto& s : sources_)
            if (s.name == name) source_ = &s;
        for (const auto& e : table_.kernels)
            if (e.name == name) entry_ = &e;
        if (!source_ || !entry_)
            throw Error("metal emulator: library '" + std::string(table_.name) + "' has no kernel '" + std::string(name) + "'");
        bound_.assign(source_->n_buffers + 1, Binding{});
        threadgroup_bytes_ = 0;
    }
    void set_buffer(std::uint32_t index, Buffer& buffer, std::size_t offset) override {
        require_kernel();
        check_buffer_binding(*source_, index, offset, buffer.size(), prefix());
        auto* host = dynamic_cast<HostBuffer*>(&buffer);
        bound_[index] = Binding{buffer.contents() + offset, buffer.contents() + buffer.size(), {}, host ? host->stamps() : nullptr,
                                buffer.contents()};
    }
    void set_bytes(std::uint32_t index, const void* data, std::size_t size) override {
        require_kernel();
        check_bytes_binding(*source_, index, prefix());
        const auto* b = static_cast<const std::byte*>(data);
        bound_[index] = Binding{nullptr, nullptr, std::vector<std::byte>(b, b + size)};
    }
    void set_threadgroup_memory(std::size_t bytes) override {
        require_kernel();
        threadgroup_bytes_ = bytes;
    }
    // Later dispatches begin a new barrier interval.
    void barrier() override {
        interval_.first = interval_.dispatch + 1;
        interval_.kernels.clear();
    }

    void dispatch(Size3 groups, Size3 threads) override {
        require_kernel();
        std::array<bool, metal_src::kMaxBuffers> bound{};
        for (std::size_t i = 0; i < source_->n_buffers; ++i) bound[i] = bound_[i].lo != nullptr;
        const auto& params = bound_[source_->n_buffers].bytes;
        check_dispatch({*source_, bound, params.size(), entry_->params_size, threadgroup_bytes_, groups, threads}, prefix());
        Launch launch;
        launch.kernel = source_->name.data();
        launch.entry = entry_->entry;
        for (std::size_t i = 0; i < source_->n_buffers; ++i) {
            // Writable buffers are race-checked (their elements are Refs); read-only ones need not be. Both
            // take part in the barrier check.
            const bool writable = !source_->buffers[i].type.starts_with("const ");
            launch.buffers.push_back(Region{bound_[i].lo, bound_[i].hi, "buffer " + std::to_string(i) + " '" + std::string(source_->buffers[i].name) + "'",
                                            writable ? &runner_.ops() : nullptr, false, bound_[i].stamps, bound_[i].origin, &interval_});
        }
        if (params.size() > sizeof(launch.params)) throw Error(prefix() + "parameters of " + std::to_string(params.size()) + " bytes are over the emulator's limit");
        std::memcpy(launch.params, params.data(), params.size());
        launch.params_size = params.size();
        launch.threadgroup_bytes = threadgroup_bytes_;
        launch.groups[0] = groups.x, launch.groups[1] = groups.y, launch.groups[2] = groups.z;
        launch.threads[0] = threads.x, launch.threads[1] = threads.y, launch.threads[2] = threads.z;
        ++interval_.dispatch;
        interval_.kernels.push_back(launch.kernel);
        run(launch, groups);
    }

private:
    struct Binding {
        std::byte* lo = nullptr;
        std::byte* hi = nullptr;
        std::vector<std::byte> bytes;
        DispatchStamp* stamps = nullptr;  // of the whole buffer, from `origin`, its first byte
        const std::byte* origin = nullptr;
    };

    void require_kernel() const {
        if (!source_) throw Error("metal emulator: no kernel set");
    }
    std::string prefix() const { return "metal emulator: kernel '" + std::string(source_->name) + "': "; }

    // Threadgroups in a drawn order (the runner's generator): no kernel may depend on one.
    void run(const Launch& launch, Size3 groups) {
        runner_.begin_dispatch();
        runner_.shuffled(group_order_, std::uint32_t(groups.count()));
        for (const std::uint32_t i : group_order_) {
            const std::uint32_t g[3] = {i % groups.x, i / groups.x % groups.y, i / (groups.x * groups.y)};
            runner_.run(launch, g);
        }
    }

    std::span<const metal_src::KernelSource> sources_;
    const LibraryTable& table_;
    GroupRunner runner_;
    std::vector<std::uint32_t> group_order_;
    const metal_src::KernelSource* source_ = nullptr;
    const KernelTableEntry* entry_ = nullptr;
    std::vector<Binding> bound_;
    std::size_t threadgroup_bytes_ = 0;
    BarrierInterval interval_;
};

class EmuDevice final : public Device {
public:
    EmuDevice(std::span<const metal_src::KernelSource> sources, const LibraryTable& table)
        : encoder_(sources, table), name_("metal emulator (" + std::string(table.name) + ")") {}

    std::string_view name() const override { return name_; }
    std::unique_ptr<Buffer> new_buffer(std::size_t bytes) override { return std::make_unique<HostBuffer>(bytes); }
    std::unique_ptr<Buffer> wrap(const std::byte* data, std::size_t bytes) override {
        return std::make_unique<HostBuffer>(data, bytes);
    }
    Encoder& encoder() override { return encoder_; }
    // What was encoded has run; the next dispatch sees all of it.
    void finish() override { encoder_.barrier(); }

private:
    EmuEncoder encoder_;
    std::string name_;
};

}  // namespace forge::metal::emu
