// SPDX-License-Identifier: Apache-2.0
// The plugin files warrend has loaded, so that a path is loaded once while
// its file stays the same, and anew once the file is replaced.
//
// A reload keeps a queue's handler when its file is unchanged (same device,
// inode, size and mtime) and loads a replaced file as a new library, while
// the previous build keeps serving the requests it has until its queue
// drains; the last reference unloads it. Replace plugin files the way
// packages do, by moving a new file into place: a file rewritten in place
// changes code under a running handler.
#pragma once

#include "plugin_library.h"

#include <filesystem>
#include <map>
#include <memory>

namespace warren {

class PluginCatalog {
 public:
  // The library for `path`: the one loaded before if the file is the same,
  // else a fresh load. Throws PluginError.
  std::shared_ptr<const PluginLibrary> load(const std::filesystem::path& path);

 private:
  struct Entry {
    std::weak_ptr<const PluginLibrary> latest;
    int generation = 0;  // of the load name last used for the path
    bool loaded = false;
  };
  std::map<std::filesystem::path, Entry> entries_;
};

}  // namespace warren
