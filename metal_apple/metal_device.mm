// Metal executor: metal::Device over the Metal framework (Objective-C++, ARC). Never compiled on Linux;
// kept to the few calls the Device interface needs.
#import <Foundation/Foundation.h>
#import <Metal/Metal.h>

#include <string>
#include <unordered_map>

#include "forge/core/error.hpp"
#include "forge/metal/metal_device.hpp"

namespace forge::metal {
namespace {

std::string describe(NSError* e) { return e ? std::string([[e localizedDescription] UTF8String]) : std::string("unknown error"); }

class MetalBuffer final : public Buffer {
public:
    explicit MetalBuffer(id<MTLBuffer> b) : b_(b) {}
    std::byte* contents() override { return static_cast<std::byte*>([b_ contents]); }
    std::size_t size() const override { return [b_ length]; }
    id<MTLBuffer> handle() const { return b_; }

private:
    id<MTLBuffer> b_;
};

class MetalEncoder final : public Encoder {
public:
    MetalEncoder(id<MTLDevice> device, id<MTLLibrary> library) : device_(device), library_(library), queue_([device newCommandQueue]) {
        if (!queue_) throw Error("metal: cannot create a command queue");
    }

    void set_kernel(std::string_view name) override {
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
    void set_buffer(std::uint32_t index, Buffer& buffer, std::size_t offset) override {
        open();
        [encoder_ setBuffer:static_cast<MetalBuffer&>(buffer).handle() offset:offset atIndex:index];
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
    void finish() {
        if (!command_) return;
        [encoder_ endEncoding];
        [command_ commit];
        [command_ waitUntilCompleted];
        const bool failed = [command_ status] == MTLCommandBufferStatusError;
        NSError* err = [command_ error];
        command_ = nil;
        encoder_ = nil;
        current_ = nil;
        if (failed) throw Error("metal: the command buffer failed: " + describe(err));
    }

private:
    void open() {
        if (command_) return;
        command_ = [queue_ commandBuffer];
        encoder_ = [command_ computeCommandEncoder];
        if (!command_ || !encoder_) throw Error("metal: cannot create a command buffer");
    }

    id<MTLDevice> device_;
    id<MTLLibrary> library_;
    id<MTLCommandQueue> queue_;
    id<MTLCommandBuffer> command_ = nil;
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
    // Mapped tensors are not page-aligned, so they are copied into shared buffers.
    std::unique_ptr<Buffer> wrap(const std::byte* data, std::size_t bytes) override {
        id<MTLBuffer> b = [device_ newBufferWithBytes:data length:(bytes ? bytes : 1) options:MTLResourceStorageModeShared];
        if (!b) throw Error("metal: cannot allocate " + std::to_string(bytes) + " bytes");
        return std::make_unique<MetalBuffer>(b);
    }
    Encoder& encoder() override { return encoder_; }
    void finish() override { encoder_.finish(); }

private:
    id<MTLDevice> device_;
    MetalEncoder encoder_;
    std::string name_;
};

}  // namespace

std::unique_ptr<Device> make_metal_device(std::string_view msl_source) {
    @autoreleasepool {
        id<MTLDevice> device = MTLCreateSystemDefaultDevice();
        if (!device) throw Error("Metal is unavailable: no Metal device on this machine");
        MTLCompileOptions* options = [MTLCompileOptions new];
        options.fastMathEnabled = NO;  // precise exp/log, as the emulator and the CPU compute them
        NSString* src = [[NSString alloc] initWithBytes:msl_source.data() length:msl_source.size() encoding:NSUTF8StringEncoding];
        NSError* err = nil;
        id<MTLLibrary> library = [device newLibraryWithSource:src options:options error:&err];
        if (!library) throw Error("metal: the MSL library does not compile: " + describe(err));
        return std::make_unique<MetalDevice>(device, library);
    }
}

}  // namespace forge::metal
