#pragma once
// A whole file's bytes in memory, read-only: mapped from the page cache (the default: weights are used
// in place, so a model costs its file's pages once, shared with every process that maps the file), or
// read into memory of the process's own.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "forge/core/error.hpp"
#include "forge/core/printable.hpp"

namespace forge {

// Where an opened file's bytes live.
enum class Residency : std::uint8_t {
    // Mapped from the page cache: nothing is copied, pages load on first touch and are shared with every
    // process mapping the file, and the kernel may drop them under memory pressure (they are read again).
    page_cache,
    // Read at open into the process's own anonymous memory, asked for in 2 MiB pages (transparent huge
    // pages, where the kernel grants them): the file's size more resident memory per process, none of it
    // shared, as llama.cpp's --no-mmap. For files on network or slow disks, and for machines where
    // streaming weights from the page cache's 4 KiB pages is slower (docs/performance.md).
    own_memory,
};

class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path, Residency residency = Residency::page_cache) {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. It has no
        // effect on a regular file, and anything else is refused right after.
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) throw Error("cannot open " + quoted_text(path, 4096) + ": " + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            throw Error(quoted_text(path, 4096) + " is not a regular file" + kind(st.st_mode));
        }
        size_ = static_cast<std::size_t>(st.st_size);
        residency_ = residency;
        try {
            if (size_ > 0) {
                if (residency == Residency::page_cache) map_file(fd, path);
                else read_file(fd, path);
            }
        } catch (...) {
            ::close(fd);
            throw;
        }
        ::close(fd);
    }
    MappedFile(MappedFile&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), mapped_bytes_(std::exchange(o.mapped_bytes_, 0)),
          residency_(o.residency_) {}
    MappedFile& operator=(MappedFile&& o) noexcept {
        if (this != &o) {
            release();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
            mapped_bytes_ = std::exchange(o.mapped_bytes_, 0);
            residency_ = o.residency_;
        }
        return *this;
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile() { release(); }

    std::span<const std::byte> bytes() const { return {data_, size_}; }
    Residency residency() const { return residency_; }

private:
    static constexpr std::size_t kHugePage = std::size_t(2) << 20;

    void map_file(int fd, const std::string& path) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) throw Error("cannot map " + quoted_text(path, 4096) + ": " + std::strerror(errno));
        data_ = static_cast<const std::byte*>(p);
        mapped_bytes_ = size_;
    }

    // Anonymous memory starting on a 2 MiB boundary, whole 2 MiB pages of it (the kernel backs a range
    // with huge pages only where it covers aligned 2 MiB), then the file read into it and made read-only.
    void read_file(int fd, const std::string& path) {
        const std::size_t bytes = (size_ + kHugePage - 1) / kHugePage * kHugePage;
        void* p = ::mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw Error("cannot allocate " + std::to_string(size_) + " bytes for " + quoted_text(path, 4096) + ": " + std::strerror(errno));
        auto* raw = static_cast<std::byte*>(p);
        const std::size_t lead = (kHugePage - reinterpret_cast<std::uintptr_t>(raw) % kHugePage) % kHugePage;
        if (lead > 0) ::munmap(raw, lead);
        ::munmap(raw + lead + bytes, kHugePage - lead);
        auto* dst = raw + lead;
        data_ = dst;
        mapped_bytes_ = bytes;
#ifdef MADV_HUGEPAGE
        ::madvise(dst, bytes, MADV_HUGEPAGE);  // a request: where refused the pages stay 4 KiB
#endif
        for (std::size_t done = 0; done < size_;) {
            const ::ssize_t n = ::read(fd, dst + done, std::min<std::size_t>(size_ - done, std::size_t(1) << 30));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                const std::string why = n < 0 ? std::strerror(errno) : "the file ended early: it shrank while being read";
                release();
                throw Error("cannot read " + quoted_text(path, 4096) + " at byte " + std::to_string(done) + ": " + why);
            }
            done += std::size_t(n);
        }
        ::mprotect(dst, bytes, PROT_READ);
    }

    static std::string kind(mode_t m) {
        if (S_ISDIR(m)) return " (it is a directory)";
        if (S_ISFIFO(m)) return " (it is a FIFO)";
        if (S_ISCHR(m) || S_ISBLK(m)) return " (it is a device)";
        if (S_ISSOCK(m)) return " (it is a socket)";
        return "";
    }
    void release() {
        if (data_) ::munmap(const_cast<std::byte*>(data_), mapped_bytes_);
        data_ = nullptr;
        mapped_bytes_ = 0;
    }
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;          // the file's bytes
    std::size_t mapped_bytes_ = 0;  // the mapping's (whole 2 MiB pages when read into own memory)
    Residency residency_ = Residency::page_cache;
};

}  // namespace forge
