// Metal executor: metal::Device over the Metal framework (Objective-C++, ARC). Never compiled on Linux;
// kept to the few calls the Device interface needs.
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>

#include <unistd.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "forge/core/error.hpp"
#include "forge/metal/metal_device.hpp"

namespace forge::metal {
namespace {

std::string describe(NSError* e) { return e ? std::string([[e localizedDescription] UTF8String]) : std::string("unknown error"); }

// A window [offset, offset + size) of a Metal buffer: all of one the device allocated, or a tensor's bytes
// inside the pages of a file mapping that the buffer wraps in place.
class MetalBuffer final : public Buffer {
public:
    explicit MetalBuffer(id<MTLBuffer> b) : b_(b), size_([b length]) {}
    MetalBuffer(id<MTLBuffer> b, std::size_t offset, std::size_t size) : b_(b), offset_(offset), size_(size) {}
    std::byte* contents() override { return static_cast<std::byte*>([b_ contents]) + offset_; }
    std::size_t size() const override { return size_; }
    id<MTLBuffer> handle() const { return b_; }
    std::size_t offset() const { return offset_; }

private:
    id<MTLBuffer> b_;
    std::size_t offset_ = 0, size_;
};

// Every method that makes Objective-C objects drains its own autorelease pool: a host thread that is not a
// Cocoa run loop has none, and each token's command buffer and encoder would otherwise pile up.
class MetalEncoder final : public Encoder {
public:
    MetalEncoder(id<MTLDevice> device, id<MTLLibrary> library) : device_(device), library_(library), queue_([device newCommandQueue]) {
        if (!queue_) throw Error("metal: cannot create a command queue");
    }

    void set_kernel(std::string_view name) override {
        @autoreleasepool {
            open();
            const std::string key(name);
            auto it = pipelines_.find(key);
            if (it == pipelines_.end()) {
                id<MTLFunction> f = [library_ newFunctionWithName:[NSString stringWithUTF8String:key.c_str()]];
                if (!f) throw Error("metal: the library has no kernel '" + key + "'");
                NSError* err = nil;
                id<MTLComputePipelineState> p = [device_ newComputePipelineStateWithFunction:f error:&err];
                if (!p) throw Error("metal: cannot build the pipeline of '" + key + "': " + describe(err));
                it = pipelines_.emplace(key, p).first;
            }
            current_ = it->second;
            [encoder_ setComputePipelineState:current_];
        }
    }
    void set_buffer(std::uint32_t index, Buffer& buffer, std::size_t offset) override {
        open();
        const auto& b = static_cast<MetalBuffer&>(buffer);
        [encoder_ setBuffer:b.handle() offset:b.offset() + offset atIndex:index];
    }
    void set_bytes(std::uint32_t index, const void* data, std::size_t size) override {
        open();
        [encoder_ setBytes:data length:size atIndex:index];
    }
    void set_threadgroup_memory(std::size_t bytes) override {
        open();
        [encoder_ setThreadgroupMemoryLength:bytes atIndex:0];
    }
    void dispatch(Size3 groups, Size3 threads) override {
        if (!current_) throw Error("metal: dispatch without a kernel");
        if (threads.count() > [current_ maxTotalThreadsPerThreadgroup])
            throw Error("metal: " + std::to_string(threads.count()) + " threads per threadgroup exceed the pipeline's maximum of " +
                        std::to_string([current_ maxTotalThreadsPerThreadgroup]));
        [encoder_ dispatchThreadgroups:MTLSizeMake(groups.x, groups.y, groups.z)
                 threadsPerThreadgroup:MTLSizeMake(threads.x, threads.y, threads.z)];
    }
    void barrier() override {
        open();
        [encoder_ memoryBarrierWithScope:MTLBarrierScopeBuffers];
    }
    // The queue runs command buffers in the order they are committed, so a later one sees every write of
    // the earlier ones; finish() waits for all of them, then reports the first that failed.
    void commit() {
        @autoreleasepool {
            if (!command_) return;
            [encoder_ endEncoding];
            [command_ commit];
            [committed_ addObject:command_];
            command_ = nil;
            encoder_ = nil;
            current_ = nil;
        }
    }
    void finish() {
        @autoreleasepool {
            commit();
            NSArray<id<MTLCommandBuffer>>* done = committed_;
            committed_ = [NSMutableArray array];
            NSError* failure = nil;
            bool failed = false;
            for (id<MTLCommandBuffer> c in done) {
                [c waitUntilCompleted];
                if (!failed && [c status] == MTLCommandBufferStatusError) failed = true, failure = [c error];
            }
            if (failed) throw Error("metal: the command buffer failed: " + describe(failure));
        }
    }

private:
    void open() {
        if (command_) return;
        @autoreleasepool {
            command_ = [queue_ commandBuffer];
            // Concurrent: dispatches with no barrier between them may overlap on the GPU, so the barriers
            // GpuModel places are what orders the forward pass (the emulator checks their placement).
            encoder_ = [command_ computeCommandEncoderWithDispatchType:MTLDispatchTypeConcurrent];
        }
        if (!command_ || !encoder_) throw Error("metal: cannot create a command buffer");
    }

    id<MTLDevice> device_;
    id<MTLLibrary> library_;
    id<MTLCommandQueue> queue_;
    id<MTLCommandBuffer> command_ = nil;
    NSMutableArray<id<MTLCommandBuffer>>* committed_ = [NSMutableArray array];  // since the last finish()
    id<MTLComputeCommandEncoder> encoder_ = nil;
    id<MTLComputePipelineState> current_ = nil;
    std::unordered_map<std::string, id<MTLComputePipelineState>> pipelines_;
};

class MetalDevice final : public Device {
public:
    MetalDevice(id<MTLDevice> device, id<MTLLibrary> library)
        : device_(device), encoder_(device, library), name_(std::string("metal (") + [[device name] UTF8String] + ")") {}

    std::string_view name() const override { return name_; }
    std::unique_ptr<Buffer> new_buffer(std::size_t bytes) override {
        id<MTLBuffer> b = [device_ newBufferWithLength:(bytes ? bytes : 1) options:MTLResourceStorageModeShared];
        if (!b) throw Error("metal: cannot allocate " + std::to_string(bytes) + " bytes");
        return std::make_unique<MetalBuffer>(b);
    }
    void map_file(std::span<const std::byte> mapping) override { mapping_ = mapping; }
    // Inside the file's mapping the tensor's pages are wrapped in place (newBufferWithBytesNoCopy wants a
    // page-aligned start and a whole number of pages; neighbouring tensors share their boundary pages, and
    // the mapping's last page is whole in memory), so the weights are not held twice. Elsewhere, or where
    // Metal refuses the wrapping (a span over the device's largest buffer), they are copied.
    std::unique_ptr<Buffer> wrap(const std::byte* data, std::size_t bytes) override {
        const auto page = std::uintptr_t(getpagesize());
        const auto at = reinterpret_cast<std::uintptr_t>(data), base = reinterpret_cast<std::uintptr_t>(mapping_.data());
        if (bytes > 0 && at >= base && at + bytes <= base + mapping_.size()) {
            const std::uintptr_t first = at / page * page, end = (at + bytes + page - 1) / page * page;
            id<MTLBuffer> b = [device_ newBufferWithBytesNoCopy:reinterpret_cast<void*>(first)
                                                         length:end - first
                                                        options:MTLResourceStorageModeShared
                                                    deallocator:nil];
            if (b) return std::make_unique<MetalBuffer>(b, at - first, bytes);
        }
        id<MTLBuffer> b = [device_ newBufferWithBytes:data length:(bytes ? bytes : 1) options:MTLResourceStorageModeShared];
        if (!b) throw Error("metal: cannot allocate " + std::to_string(bytes) + " bytes");
        return std::make_unique<MetalBuffer>(b);
    }
    Encoder& encoder() override { return encoder_; }
    void commit() override { encoder_.commit(); }
    void finish() override { encoder_.finish(); }

private:
    id<MTLDevice> device_;
    MetalEncoder encoder_;
    std::string name_;
    std::span<const std::byte> mapping_;
};

// Precise exp and log, as the CPU path and the emulator compute them. macOS 15 replaced fastMathEnabled
// with mathMode and deprecated it, which -Werror turns into a failed build: the new property where the
// SDK and the system have it, the old one only before.
void use_precise_math(MTLCompileOptions* options) {
#if defined(__MAC_OS_X_VERSION_MAX_ALLOWED) && __MAC_OS_X_VERSION_MAX_ALLOWED >= 150000
    if (@available(macOS 15.0, *)) {
        options.mathMode = MTLMathModeSafe;
        options.mathFloatingPointFunctions = MTLMathFloatingPointFunctionsPrecise;
        return;
    }
#endif
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
    options.fastMathEnabled = NO;
#pragma clang diagnostic pop
}

}  // namespace

std::unique_ptr<Device> make_metal_device(std::string_view msl_source) {
    @autoreleasepool {
        id<MTLDevice> device = MTLCreateSystemDefaultDevice();
        if (!device) throw Error("Metal is unavailable: no Metal device on this machine");
        // The kernels use simdgroup matrices (MSL 2.3, Apple7-family GPUs) and simd reductions.
        if (![device supportsFamily:MTLGPUFamilyApple7])
            throw Error(std::string("metal: ") + [[device name] UTF8String] +
                        " is not an Apple7-family GPU (A14, M1 or later), which forge's kernels need for simdgroup matrices; "
                        "use the CPU backend");
        MTLCompileOptions* options = [MTLCompileOptions new];
        use_precise_math(options);
        if (@available(macOS 13.0, iOS 16.0, *)) {
            options.languageVersion = MTLLanguageVersion3_0;
        } else {
            throw Error("metal: forge's kernels are written in MSL 3.0, which needs macOS 13 or iOS 16");
        }
        NSString* src = [[NSString alloc] initWithBytes:msl_source.data() length:msl_source.size() encoding:NSUTF8StringEncoding];
        NSError* err = nil;
        id<MTLLibrary> library = [device newLibraryWithSource:src options:options error:&err];
        if (!library) throw Error("metal: the MSL library does not compile: " + describe(err));
        return std::make_unique<MetalDevice>(device, library);
    }
}

}  // namespace forge::metal
