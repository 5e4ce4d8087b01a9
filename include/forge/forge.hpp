#pragma once
// forge in one include: files, shapes, quantization, tokenizers, the CPU model, sampling, generation,
// the OpenAI-compatible server. Narrower headers work alone too.
//
// The GPU path is the one exception: include "forge/metal/open.hpp" where it is used. It assembles the
// MSL library of every catalog model at compile time, which costs seconds in each translation unit.
#include "forge/core/dtype.hpp"
#include "forge/core/error.hpp"
#include "forge/core/half.hpp"
#include "forge/core/mapped_file.hpp"
#include "forge/gguf/model_shape.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/gguf/writer.hpp"
#include "forge/json/json.hpp"
#include "forge/model/any_model.hpp"
#include "forge/model/generate.hpp"
#include "forge/model/model.hpp"
#include "forge/model/open_model.hpp"
#include "forge/models/catalog.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"
#include "forge/quant/row.hpp"
#include "forge/sample/categorical.hpp"
#include "forge/sample/sampler.hpp"
#include "forge/serve/server.hpp"
#include "forge/tokenizer/tokenizer.hpp"
#include "forge/traits/model_shape.hpp"
#include "forge/traits/model_traits.hpp"
#include "forge/traits/shape_rules.hpp"
