// SPDX-License-Identifier: Apache-2.0
// A password kept in a file of its own (a systemd credential, a mounted
// secret) rather than in a URL, where ps, logs and shell history see it.
#pragma once

#include <filesystem>
#include <string>

namespace warren {

// The file's content without one trailing newline ("\n" or "\r\n"). Throws
// std::runtime_error naming the file and what is wrong (unreadable, empty,
// a NUL byte, more than one line): never any of its content.
std::string readSecretFile(const std::filesystem::path& file);

// $CREDENTIALS_DIRECTORY/<name>: where systemd puts a credential of the
// unit (LoadCredential=NAME:PATH). Throws std::runtime_error when the
// variable is not set (warrend was not started by such a unit).
std::filesystem::path systemdCredentialPath(const std::string& name);

}  // namespace warren
