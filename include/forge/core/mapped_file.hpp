#pragma once
// A read-only memory map of a whole file. Weights are used in place from it, so a model costs its
// file's pages once (shared with the page cache), never a second copy.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "forge/core/error.hpp"
#include "forge/core/printable.hpp"

namespace forge {

class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path) {
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
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                const int err = errno;
                ::close(fd);
                throw Error("cannot map " + quoted_text(path, 4096) + ": " + std::strerror(err));
            }
            data_ = static_cast<const std::byte*>(p);
        }
        ::close(fd);
    }
    MappedFile(MappedFile&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    MappedFile& operator=(MappedFile&& o) noexcept {
        if (this != &o) {
            release();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile() { release(); }

    std::span<const std::byte> bytes() const { return {data_, size_}; }

private:
    static std::string kind(mode_t m) {
        if (S_ISDIR(m)) return " (it is a directory)";
        if (S_ISFIFO(m)) return " (it is a FIFO)";
        if (S_ISCHR(m) || S_ISBLK(m)) return " (it is a device)";
        if (S_ISSOCK(m)) return " (it is a socket)";
        return "";
    }
    void release() {
        if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
        data_ = nullptr;
    }
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace forge
