// SPDX-License-Identifier: Apache-2.0
// config_doc: the configuration's documentation, from the schema.
//   config_doc FILE                          rewrites the key tables of FILE
//                                            (docs/configuration.md)
//   config_doc --man VERSION EXAMPLE OUTPUT  writes warren.yaml(5) to OUTPUT,
//                                            with the file EXAMPLE in it
// config_test checks that the committed docs/configuration.md needs no
// rewrite; the build makes the manual page (docs/man/CMakeLists.txt).
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include "config_man.h"
#include "config_schema.h"

namespace {

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "config_doc: cannot read " << path << "\n";
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out.flush()) {
    std::cerr << "config_doc: cannot write " << path << "\n";
    return false;
  }
  return true;
}

int rewriteKeyTables(const std::string& path) {
  const auto text = readFile(path);
  if (!text) return 1;
  const std::string rewritten = warren::withKeyTables(*text);
  if (rewritten == *text) return 0;
  if (!writeFile(path, rewritten)) return 1;
  std::cout << path << ": key tables rewritten\n";
  return 0;
}

int writeManPage(const std::string& version, const std::string& example_path,
                 const std::string& output) {
  const auto example = readFile(example_path);
  if (!example) return 1;
  return writeFile(output, warren::renderConfigManPage(version, *example)) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 2) return rewriteKeyTables(argv[1]);
    if (argc == 5 && std::string(argv[1]) == "--man")
      return writeManPage(argv[2], argv[3], argv[4]);
  } catch (const std::exception& e) {
    std::cerr << "config_doc: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: config_doc docs/configuration.md\n"
               "       config_doc --man VERSION EXAMPLE_YAML OUTPUT\n";
  return 2;
}
