#pragma once
// forge's OpenAI-compatible HTTP server (docs/serving.md), built on the library of forge/forge.hpp.
#include "forge/forge.hpp"
#include "forge/serve/server.hpp"
