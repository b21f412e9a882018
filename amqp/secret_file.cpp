// SPDX-License-Identifier: Apache-2.0
#include "secret_file.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

namespace warren {
namespace {

// Far more than any password; a larger file is not one.
constexpr std::size_t kMaxSecretBytes = 4096;

[[noreturn]] void refuse(const std::filesystem::path& file, const std::string& why) {
  throw std::runtime_error("password file '" + file.string() + "' " + why);
}

}  // namespace

std::string readSecretFile(const std::filesystem::path& file) {
  errno = 0;
  std::ifstream stream(file, std::ios::binary);
  if (!stream) {
    refuse(file, "cannot be read: " + std::error_code(errno, std::generic_category()).message());
  }
  std::string text;
  text.resize(kMaxSecretBytes + 1);
  stream.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (stream.bad()) refuse(file, "cannot be read");
  text.resize(static_cast<std::size_t>(stream.gcount()));
  if (text.size() > kMaxSecretBytes) {
    refuse(file, "is larger than " + std::to_string(kMaxSecretBytes) + " bytes: not a password");
  }
  if (text.ends_with('\n')) text.pop_back();
  if (text.ends_with('\r')) text.pop_back();
  if (text.empty()) refuse(file, "is empty");
  if (text.find('\0') != std::string::npos) refuse(file, "holds a NUL byte");
  if (text.find('\n') != std::string::npos) {
    refuse(file, "holds more than one line; a password file holds the password alone");
  }
  return text;
}

std::filesystem::path systemdCredentialPath(const std::string& name) {
  const char* directory = std::getenv("CREDENTIALS_DIRECTORY");
  if (directory == nullptr || *directory == '\0') {
    throw std::runtime_error(
        "the credential '" + name +
        "' needs $CREDENTIALS_DIRECTORY, which systemd sets for a unit with LoadCredential=" +
        name + ":PATH; it is not set");
  }
  return std::filesystem::path(directory) / name;
}

}  // namespace warren
