# The model zoo (include/forge/models/catalog.hpp's ZooCatalog) as CMake sees it: one entry per model,
# "example-binary|traits template|weight type of the example binary". The forge CLI compiles both weight
# types of each (FORGE_BUILD_ZOO only); the example binary fixes one: Q8_0 up to 3B parameters, Q4_0 for the
# 7-8B models, so that each fits a 16 GB machine with room for its KV cache.
set(FORGE_ZOO_MODELS
  "forge-smollm2-135m|SmolLM2_135M|Q8_0"
  "forge-smollm2-360m|SmolLM2_360M|Q8_0"
  "forge-smollm2-1.7b|SmolLM2_1_7B|Q8_0"
  "forge-qwen2.5-0.5b|Qwen2_5_0_5B|Q8_0"
  "forge-qwen2.5-1.5b|Qwen2_5_1_5B|Q8_0"
  "forge-qwen2.5-3b|Qwen2_5_3B|Q8_0"
  "forge-qwen2.5-7b|Qwen2_5_7B|Q4_0"
  "forge-tinyllama-1.1b|TinyLlama_1_1B|Q8_0"
  "forge-llama-3.2-1b|Llama3_2_1B|Q8_0"
  "forge-llama-3.2-3b|Llama3_2_3B|Q8_0"
  "forge-llama-3.1-8b|Llama3_1_8B|Q4_0"
  "forge-mistral-7b-v0.3|Mistral_7B_v0_3|Q4_0")
