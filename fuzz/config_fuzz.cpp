// SPDX-License-Identifier: Apache-2.0
// Fuzzes the configuration loader with arbitrary YAML text. parseConfig()
// promises to throw ConfigError and nothing else (daemon/config/config.h); any other
// exception escapes and is reported as a crash.
//
// Inputs with a ',' outside [ ] or { } (e.g. "- 2\n,") used to be skipped:
// yaml-cpp 0.7's YAML::LoadAll() loops forever on them (jbeder/yaml-cpp#1040).
// The loader no longer calls LoadAll, so the fuzzer takes every input.
#include "config.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    const warren::Config config = warren::parseConfig(yaml, "/nonexistent/warrend.yaml");
    static_cast<void>(config);
  } catch (const warren::ConfigError&) {
  }
  return 0;
}
