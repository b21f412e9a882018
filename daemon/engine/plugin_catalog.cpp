// SPDX-License-Identifier: Apache-2.0
#include "plugin_catalog.h"

#include <string>

namespace warren {
namespace {

// dir/sum.so, dir/./sum.so, dir/././sum.so, ...: names of the same file that
// glibc's dlopen() does not take for a name it has loaded before. Never
// reused, since a dlclose()d library may stay loaded (C++ unique symbols
// make it "nodelete").
std::string loadName(const std::filesystem::path& path, int generation) {
  std::string name = path.has_parent_path() ? path.parent_path().string() + "/" : "./";
  for (int i = 0; i < generation; ++i) name += "./";
  return name + path.filename().string();
}

}  // namespace

std::shared_ptr<const PluginLibrary> PluginCatalog::load(const std::filesystem::path& path) {
  Entry& entry = entries_[path];
  const auto identity = FileIdentity::of(path);
  if (auto latest = entry.latest.lock(); latest && identity && latest->identity() == *identity) {
    return latest;
  }
  const int generation = entry.loaded ? entry.generation + 1 : 0;
  auto library = PluginLibrary::load(path, loadName(path, generation));
  entry.latest = library;
  entry.generation = generation;
  entry.loaded = true;
  return library;
}

}  // namespace warren
