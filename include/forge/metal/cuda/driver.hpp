#pragma once
// The few CUDA driver API calls the CUDA executor makes, looked up in libcuda at run time: forge builds
// and runs without the CUDA toolkit, and a machine without an NVIDIA driver gets a clear "unavailable"
// rather than a link error. The declarations follow the driver API's C ABI (cuda.h).
#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "forge/core/error.hpp"

namespace forge::metal::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
using CUcontext = CUctx_st*;
using CUmodule = CUmod_st*;
using CUfunction = CUfunc_st*;

inline constexpr int kAttrComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
inline constexpr int kAttrComputeCapabilityMinor = 76;
inline constexpr unsigned kMemAttachGlobal = 1;        // CU_MEM_ATTACH_GLOBAL

struct Driver {
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDeviceGet)(CUdevice*, int);
    CUresult (*cuDeviceGetName)(char*, int, CUdevice);
    CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
    CUresult (*cuCtxSetCurrent)(CUcontext);
    CUresult (*cuCtxSynchronize)();
    CUresult (*cuModuleLoadData)(CUmodule*, const void*);
    CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
    CUresult (*cuModuleGetGlobal)(CUdeviceptr*, std::size_t*, CUmodule, const char*);
    CUresult (*cuMemAllocManaged)(CUdeviceptr*, std::size_t, unsigned);
    CUresult (*cuMemFree)(CUdeviceptr);
    CUresult (*cuMemcpyDtoH)(void*, CUdeviceptr, std::size_t);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**,
                               void**);
    CUresult (*cuGetErrorName)(CUresult, const char**);
    CUresult (*cuGetErrorString)(CUresult, const char**);

    CUdevice device = 0;
    CUcontext context = nullptr;
    std::string device_name;
    int compute_capability = 0;  // e.g. 90

    // Throws naming `what` and the driver's description of `r` unless it is CUDA_SUCCESS.
    void check(CUresult r, const std::string& what) const {
        if (r == 0) return;
        const char* name = nullptr;
        const char* text = nullptr;
        cuGetErrorName(r, &name);
        cuGetErrorString(r, &text);
        throw Error("cuda: " + what + " failed: " + (name ? name : "error " + std::to_string(r)) + (text ? std::string(" (") + text + ")" : ""));
    }
};

namespace detail {

// The driver with device 0's primary context made current, or the reason there is none.
struct Loaded {
    Driver driver{};
    std::string unavailable;  // empty when the driver works
};

template <class F>
bool resolve(void* lib, const char* name, F& fn) {
    fn = reinterpret_cast<F>(::dlsym(lib, name));
    return fn != nullptr;
}

inline Loaded load() {
    Loaded l;
    void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        l.unavailable = "no NVIDIA driver (libcuda.so.1 cannot be loaded)";
        return l;
    }
    Driver& d = l.driver;
    // The _v2 entry points are the ones with 64-bit sizes and pointers (what cuda.h maps the names to).
    const bool ok = resolve(lib, "cuInit", d.cuInit) && resolve(lib, "cuDeviceGet", d.cuDeviceGet) &&
                    resolve(lib, "cuDeviceGetName", d.cuDeviceGetName) && resolve(lib, "cuDeviceGetAttribute", d.cuDeviceGetAttribute) &&
                    resolve(lib, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain) &&
                    resolve(lib, "cuCtxSetCurrent", d.cuCtxSetCurrent) && resolve(lib, "cuCtxSynchronize", d.cuCtxSynchronize) &&
                    resolve(lib, "cuModuleLoadData", d.cuModuleLoadData) && resolve(lib, "cuModuleGetFunction", d.cuModuleGetFunction) &&
                    resolve(lib, "cuModuleGetGlobal_v2", d.cuModuleGetGlobal) && resolve(lib, "cuMemAllocManaged", d.cuMemAllocManaged) &&
                    resolve(lib, "cuMemFree_v2", d.cuMemFree) && resolve(lib, "cuMemcpyDtoH_v2", d.cuMemcpyDtoH) &&
                    resolve(lib, "cuLaunchKernel", d.cuLaunchKernel) && resolve(lib, "cuGetErrorName", d.cuGetErrorName) &&
                    resolve(lib, "cuGetErrorString", d.cuGetErrorString);
    if (!ok) {
        l.unavailable = "libcuda.so.1 lacks a driver API entry point forge needs (the driver is too old)";
        return l;
    }
    try {
        d.check(d.cuInit(0), "cuInit");
        d.check(d.cuDeviceGet(&d.device, 0), "cuDeviceGet");
        char name[256] = {};
        d.check(d.cuDeviceGetName(name, sizeof name - 1, d.device), "cuDeviceGetName");
        d.device_name = name;
        int major = 0, minor = 0;
        d.check(d.cuDeviceGetAttribute(&major, kAttrComputeCapabilityMajor, d.device), "cuDeviceGetAttribute");
        d.check(d.cuDeviceGetAttribute(&minor, kAttrComputeCapabilityMinor, d.device), "cuDeviceGetAttribute");
        d.compute_capability = major * 10 + minor;
        d.check(d.cuDevicePrimaryCtxRetain(&d.context, d.device), "cuDevicePrimaryCtxRetain");
    } catch (const Error& e) {
        l.unavailable = e.what();
    }
    return l;
}

inline const Loaded& loaded() {
    static const Loaded l = load();
    return l;
}

}  // namespace detail

// Why the CUDA executor cannot run here, or empty when it can.
inline const std::string& unavailable_reason() { return detail::loaded().unavailable; }

// The driver, its context current on the calling thread.
inline const Driver& driver() {
    const auto& l = detail::loaded();
    if (!l.unavailable.empty()) throw Error("cuda: " + l.unavailable);
    l.driver.check(l.driver.cuCtxSetCurrent(l.driver.context), "cuCtxSetCurrent");
    return l.driver;
}

}  // namespace forge::metal::cuda
