#pragma once

namespace forge {

struct ModelOptions {
    int context = 0;     // KV-cache positions; 0 = the model's max_context, capped at 4096
    int threads = 1;     // worker threads for the kernels
    int max_batch = 256;  // prefill processes tokens in batches of at most this many: a batch reads the weights once
};

}  // namespace forge
