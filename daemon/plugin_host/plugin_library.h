// SPDX-License-Identifier: Apache-2.0
// A loaded plugin file: the dlopen handle and its validated descriptor.
#pragma once

#include <warren/plugin.h>

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace warren {

// A plugin file that cannot be used. The message names the path, what is
// wrong and what to do about it.
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Which file a path named when it was looked at: a plugin rebuilt or
// reinstalled (a new file moved into place) has another identity.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t modified_ns = 0;
  bool operator==(const FileIdentity&) const = default;

  // nullopt when the file cannot be stat()ed.
  static std::optional<FileIdentity> of(const std::filesystem::path& path);
};

class PluginLibrary {
 public:
  // dlopen()s `path` (RTLD_NOW | RTLD_LOCAL), finds warren_plugin_v1 and
  // checks the descriptor. Throws PluginError when the file is missing; when
  // it, its real file (symlinks resolved), that file's folder or the folder
  // of a symlink on the way is owned by anyone but root or the effective
  // user, or is group- or world-writable (checked before dlopen(), which
  // runs the plugin's constructors); when it is not a shared object, has no
  // entry symbol, was built for another ABI major, or has an incomplete
  // descriptor.
  //
  // `load_name`, when given, is the string passed to dlopen() instead of
  // `path`; it must name the same file. glibc returns an already loaded
  // object when the name matches one, so a new name is how a rebuilt plugin
  // is loaded while its previous build still serves (see PluginCatalog).
  static std::shared_ptr<const PluginLibrary> load(const std::filesystem::path& path,
                                                   const std::string& load_name = {});

  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const warren_plugin& descriptor() const noexcept { return *descriptor_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& version() const noexcept { return version_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  // The file as it was when loaded.
  const FileIdentity& identity() const noexcept { return identity_; }

 private:
  PluginLibrary(void* handle, const warren_plugin* descriptor, std::filesystem::path path,
                FileIdentity identity);

  void* handle_;
  const warren_plugin* descriptor_;
  std::filesystem::path path_;
  FileIdentity identity_;
  std::string name_;
  std::string version_;
};

}  // namespace warren
