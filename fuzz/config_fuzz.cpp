// Fuzzes the configuration loader with arbitrary YAML text. parseConfig()
// promises to throw ConfigError and nothing else (daemon/config.h); any other
// exception escapes and is reported as a crash.
#include "config.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

// yaml-cpp 0.7 (Debian 12) loops forever, allocating, in YAML::LoadAll() on
// a ',' outside a flow collection (e.g. "- 2\n,"): jbeder/yaml-cpp issue
// #1040, fixed upstream by pull request #1319 (2024), after 0.8. Telling such
// a comma from one inside [ ] or { } needs YAML's own scanner (a '[' inside a
// plain scalar opens nothing), so every input with a ',' is skipped and the
// fuzzer looks for warren's bugs rather than finding that one again.
bool mayHitLoadAllLoop(const std::string& yaml) { return yaml.find(',') != std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  if (mayHitLoadAllLoop(yaml)) return 0;
  try {
    const warren::Config config = warren::parseConfig(yaml, "/nonexistent/warrend.yaml");
    static_cast<void>(config);
  } catch (const warren::ConfigError&) {
  }
  return 0;
}
