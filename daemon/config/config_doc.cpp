// SPDX-License-Identifier: Apache-2.0
// config_doc FILE: rewrites the key tables of FILE (docs/configuration.md)
// from the configuration schema, so the docs follow daemon/config/config_schema.cpp.
// config_test checks that the committed file needs no rewrite.
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "config_schema.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: config_doc docs/configuration.md\n";
    return 2;
  }
  const std::string path = argv[1];
  std::string text;
  {
    std::ifstream in(path);
    if (!in) {
      std::cerr << "config_doc: cannot read " << path << "\n";
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  try {
    const std::string rewritten = warren::withKeyTables(text);
    if (rewritten == text) return 0;
    std::ofstream out(path, std::ios::trunc);
    out << rewritten;
    if (!out.flush()) {
      std::cerr << "config_doc: cannot write " << path << "\n";
      return 1;
    }
    std::cout << path << ": key tables rewritten\n";
  } catch (const std::exception& e) {
    std::cerr << "config_doc: " << path << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
