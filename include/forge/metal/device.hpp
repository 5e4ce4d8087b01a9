#pragma once
// The interface the GPU forward pass is written against: buffers in memory both the CPU and the device
// see (Apple's unified memory; the emulator's host memory), and an encoder that records kernel launches.
// Two implementations: the Metal executor (metal_device.hpp, Apple only) and the emulator (emu/).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace forge::metal {

struct Size3 {
    std::uint32_t x = 1, y = 1, z = 1;
    constexpr std::uint64_t count() const { return std::uint64_t(x) * y * z; }
};

class Buffer {
public:
    virtual ~Buffer() = default;
    virtual std::byte* contents() = 0;  // valid for the CPU between Device::finish() calls
    virtual std::size_t size() const = 0;
};

class Encoder {
public:
    virtual ~Encoder() = default;
    virtual void set_kernel(std::string_view name) = 0;
    virtual void set_buffer(std::uint32_t index, Buffer& buffer, std::size_t offset) = 0;
    virtual void set_bytes(std::uint32_t index, const void* data, std::size_t size) = 0;
    virtual void set_threadgroup_memory(std::size_t bytes) = 0;
    virtual void dispatch(Size3 groups, Size3 threads_per_group) = 0;
    // Later launches see every write of earlier ones.
    virtual void barrier() = 0;
};

class Device {
public:
    virtual ~Device() = default;
    virtual std::string_view name() const = 0;
    virtual std::unique_ptr<Buffer> new_buffer(std::size_t bytes) = 0;
    // A buffer over memory that outlives it and that kernels only read (mapped weights); may copy.
    virtual std::unique_ptr<Buffer> wrap(const std::byte* data, std::size_t bytes) = 0;
    // `mapping` is a read-only file mapping (page-aligned) that outlives every buffer of this device: wrap()
    // of memory inside it need not copy. The Metal executor wraps such pages in place; the emulator never
    // copies, and the CUDA executor must (the GPU does not see host memory).
    virtual void map_file(std::span<const std::byte> mapping) { (void)mapping; }
    // The encoder of the current command buffer.
    virtual Encoder& encoder() = 0;
    // Submits what was encoded without waiting, so the device computes while the host encodes what follows
    // into a new command buffer, which runs after it (a barrier, to what is encoded). Executors that run
    // each launch as it is encoded have nothing to submit.
    virtual void commit() { encoder().barrier(); }
    // Submits what was encoded and waits for it all; errors the device reports surface here at the latest.
    virtual void finish() = 0;
};

// A typed window on a buffer: elements from `offset` (in elements) to the buffer's end.
template <class T>
struct View {
    Buffer* buffer = nullptr;
    std::size_t offset = 0;

    std::size_t count() const {
        if (!buffer) return 0;
        const std::size_t start = offset * sizeof(T);
        return start >= buffer->size() ? 0 : (buffer->size() - start) / sizeof(T);
    }
    std::size_t byte_offset() const { return offset * sizeof(T); }
    View at(std::size_t elements) const { return {buffer, offset + elements}; }
    T* host() const { return reinterpret_cast<T*>(buffer->contents() + byte_offset()); }
};

template <class T>
View<T> view(Buffer& b, std::size_t offset = 0) {
    return {&b, offset};
}

}  // namespace forge::metal
