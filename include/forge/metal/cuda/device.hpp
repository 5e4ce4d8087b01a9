#pragma once
// The CUDA executor: a metal::Device that runs one MSL library's exact text on an NVIDIA GPU, compiled
// by nvcc against the CUDA shim (cuda/jit.hpp). It exists to prove forge's Metal kernels on real
// parallel hardware (barriers that matter, lanes that run at once, compute-sanitizer's race, memory and
// synchronisation checks); its speed is an NVIDIA GPU's, never Apple's. Buffers are CUDA managed
// memory, so the CPU reads and writes them between finish() calls as it does Apple's unified memory.
// Launches go to the context's stream in order, so each sees the writes of the ones before (barrier()
// asks nothing more); finish() waits for them and reports any fault the device raised.
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/metal/cuda/driver.hpp"
#include "forge/metal/cuda/jit.hpp"
#include "forge/metal/device.hpp"
#include "forge/metal/dispatch_rules.hpp"
#include "forge/metal_src/kernel.hpp"

namespace forge::metal::cuda {

class CudaBuffer final : public Buffer {
public:
    explicit CudaBuffer(std::size_t bytes) : size_(bytes) {
        const Driver& d = driver();
        d.check(d.cuMemAllocManaged(&ptr_, bytes == 0 ? 1 : bytes, kMemAttachGlobal), "allocating " + std::to_string(bytes) + " bytes");
    }
    ~CudaBuffer() override { detail::loaded().driver.cuMemFree(ptr_); }
    CudaBuffer(const CudaBuffer&) = delete;
    CudaBuffer& operator=(const CudaBuffer&) = delete;

    std::byte* contents() override { return reinterpret_cast<std::byte*>(ptr_); }
    std::size_t size() const override { return size_; }
    CUdeviceptr address() const { return ptr_; }

private:
    CUdeviceptr ptr_ = 0;
    std::size_t size_;
};

class CudaEncoder final : public Encoder {
public:
    CudaEncoder(std::span<const metal_src::KernelSource> sources, CUmodule module) : sources_(sources), module_(module) {}

    void set_kernel(std::string_view name) override {
        source_ = nullptr;
        for (const auto& s : sources_)
            if (s.name == name) source_ = &s;
        if (!source_) throw Error("cuda: the library has no kernel '" + std::string(name) + "'");
        function_ = &function(*source_);
        bound_ = {};
        addresses_ = {};
        params_.clear();
        threadgroup_bytes_ = 0;
    }
    void set_buffer(std::uint32_t index, Buffer& buffer, std::size_t offset) override {
        require_kernel();
        check_buffer_binding(*source_, index, offset, buffer.size(), prefix());
        auto* b = dynamic_cast<CudaBuffer*>(&buffer);
        if (!b) throw Error(prefix() + "buffer " + std::to_string(index) + " was not made by this device");
        bound_[index] = true;
        addresses_[index] = b->address() + offset;
    }
    void set_bytes(std::uint32_t index, const void* data, std::size_t size) override {
        require_kernel();
        check_bytes_binding(*source_, index, prefix());
        const auto* b = static_cast<const std::byte*>(data);
        params_.assign(b, b + size);
    }
    void set_threadgroup_memory(std::size_t bytes) override {
        require_kernel();
        threadgroup_bytes_ = bytes;
    }
    void barrier() override {}

    void dispatch(Size3 groups, Size3 threads) override {
        require_kernel();
        check_dispatch({*source_, bound_, params_.size(), function_->params_size, threadgroup_bytes_, groups, threads}, prefix());
        std::array<void*, metal_src::kMaxBuffers + 1> args{};
        for (std::size_t i = 0; i < source_->n_buffers; ++i) args[i] = &addresses_[i];
        args[source_->n_buffers] = params_.data();
        const Driver& d = driver();
        d.check(d.cuLaunchKernel(function_->function, groups.x, groups.y, groups.z, threads.x, threads.y, threads.z,
                                 unsigned(threadgroup_bytes_), nullptr, args.data(), nullptr),
                prefix() + "launch");
    }

private:
    struct Function {
        CUfunction function = nullptr;
        std::size_t params_size = 0;  // sizeof the parameter struct as nvcc compiled it
    };

    const Function& function(const metal_src::KernelSource& k) {
        const std::string name(k.name);
        if (const auto it = functions_.find(name); it != functions_.end()) return it->second;
        const Driver& d = driver();
        Function f;
        d.check(d.cuModuleGetFunction(&f.function, module_, jit::entry_name(k.name).c_str()), "finding kernel '" + name + "'");
        CUdeviceptr size_at = 0;
        std::size_t bytes = 0;
        d.check(d.cuModuleGetGlobal(&size_at, &bytes, module_, jit::params_size_name(k.name).c_str()), "finding kernel '" + name + "''s parameter size");
        unsigned size = 0;
        d.check(d.cuMemcpyDtoH(&size, size_at, sizeof size), "reading kernel '" + name + "''s parameter size");
        f.params_size = size;
        return functions_.emplace(name, f).first->second;
    }

    void require_kernel() const {
        if (!source_) throw Error("cuda: no kernel set");
    }
    std::string prefix() const { return "cuda: kernel '" + std::string(source_->name) + "': "; }

    std::span<const metal_src::KernelSource> sources_;
    CUmodule module_;
    std::map<std::string, Function> functions_;
    const metal_src::KernelSource* source_ = nullptr;
    const Function* function_ = nullptr;
    std::array<bool, metal_src::kMaxBuffers> bound_{};
    std::array<CUdeviceptr, metal_src::kMaxBuffers> addresses_{};
    std::vector<std::byte> params_;
    std::size_t threadgroup_bytes_ = 0;
};

class CudaDevice final : public Device {
public:
    CudaDevice(std::string_view library_name, std::span<const metal_src::KernelSource> kernels, std::string_view text)
        : encoder_(kernels, jit::load(library_name, kernels, text)),
          name_("cuda " + driver().device_name + " (" + std::string(library_name) + ")") {}

    std::string_view name() const override { return name_; }
    std::unique_ptr<Buffer> new_buffer(std::size_t bytes) override { return std::make_unique<CudaBuffer>(bytes); }
    // Copies: the mapped file is host memory the GPU does not see.
    std::unique_ptr<Buffer> wrap(const std::byte* data, std::size_t bytes) override {
        auto b = std::make_unique<CudaBuffer>(bytes);
        std::memcpy(b->contents(), data, bytes);
        return b;
    }
    Encoder& encoder() override { return encoder_; }
    void finish() override {
        const Driver& d = driver();
        d.check(d.cuCtxSynchronize(), "running the encoded kernels");
    }

private:
    CudaEncoder encoder_;
    std::string name_;
};

inline std::unique_ptr<CudaDevice> make_device(std::string_view name, std::span<const metal_src::KernelSource> kernels,
                                               std::string_view text) {
    return std::make_unique<CudaDevice>(name, kernels, text);
}

}  // namespace forge::metal::cuda
