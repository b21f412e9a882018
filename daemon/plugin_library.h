// A loaded plugin file: the dlopen handle and its validated descriptor.
#pragma once

#include <warren/plugin.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace warren {

// A plugin file that cannot be used. The message names the path, what is
// wrong and what to do about it.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PluginLibrary {
 public:
  // dlopen()s `path` (RTLD_NOW | RTLD_LOCAL), finds warren_plugin_v1 and
  // checks the descriptor. Throws PluginError when the file is missing, is
  // not a shared object, has no entry symbol, was built for another ABI
  // major, or has an incomplete descriptor.
  static std::shared_ptr<const PluginLibrary> load(const std::filesystem::path& path);

  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const warren_plugin& descriptor() const noexcept { return *descriptor_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& version() const noexcept { return version_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  PluginLibrary(void* handle, const warren_plugin* descriptor, std::filesystem::path path);

  void* handle_;
  const warren_plugin* descriptor_;
  std::filesystem::path path_;
  std::string name_;
  std::string version_;
};

}  // namespace warren
