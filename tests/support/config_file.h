// SPDX-License-Identifier: Apache-2.0
// A configuration file in a fresh temporary directory, removed with the
// object: what a test hands to a warrend process.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace warren::test {

class ConfigFile {
 public:
  ConfigFile(const std::string& name, const std::string& yaml) {
    std::string templ = (std::filesystem::temp_directory_path() / "warren-cfg-XXXXXX").string();
    dir_ = ::mkdtemp(templ.data());
    std::ofstream(path()) << yaml;
    name_ = name;
    std::filesystem::rename(dir_ / "tmp.yaml", path());
  }
  ~ConfigFile() { std::filesystem::remove_all(dir_); }
  ConfigFile(const ConfigFile&) = delete;
  ConfigFile& operator=(const ConfigFile&) = delete;

  std::string path() const { return (dir_ / (name_.empty() ? "tmp.yaml" : name_)).string(); }
  const std::filesystem::path& dir() const { return dir_; }
  // Replaces the file as an editor or config management does: write beside,
  // rename over.
  void rewrite(const std::string& yaml) const {
    std::ofstream(dir_ / "next.yaml") << yaml;
    std::filesystem::rename(dir_ / "next.yaml", path());
  }
  // Writes another file beside the configuration (a password file, ...).
  std::filesystem::path writeBeside(const std::string& name, const std::string& content) const {
    std::ofstream(dir_ / name, std::ios::binary | std::ios::trunc) << content;
    return dir_ / name;
  }

 private:
  std::filesystem::path dir_;
  std::string name_;
};

}  // namespace warren::test
