// SPDX-License-Identifier: Apache-2.0
#include "secret_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace warren {
namespace {

namespace fs = std::filesystem;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "warren-secret-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& content) {
    const fs::path file = dir_ / "secret";
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    return file;
  }

  // The message of the error reading `content` gives.
  std::string errorOf(const std::string& content) {
    try {
      readSecretFile(write(content));
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

TEST_F(SecretFileTest, OneTrailingNewlineIsNotPartOfThePassword) {
  EXPECT_EQ(readSecretFile(write("p@ss/w?rd#1%\n")), "p@ss/w?rd#1%");
  EXPECT_EQ(readSecretFile(write("p@ss/w?rd#1%\r\n")), "p@ss/w?rd#1%");
  EXPECT_EQ(readSecretFile(write(" spaced out ")), " spaced out ");
}

TEST_F(SecretFileTest, RefusesWhatCannotBeAPasswordWithoutShowingIt) {
  EXPECT_NE(errorOf("").find("is empty"), std::string::npos);
  EXPECT_NE(errorOf("\n").find("is empty"), std::string::npos);
  const std::string two_lines = errorOf("hunter2\nhunter3\n");
  EXPECT_NE(two_lines.find("more than one line"), std::string::npos) << two_lines;
  EXPECT_EQ(two_lines.find("hunter"), std::string::npos) << two_lines;
  EXPECT_NE(errorOf(std::string(5000, 'x')).find("larger than 4096 bytes"), std::string::npos);
  EXPECT_NE(errorOf(std::string("a\0b", 3)).find("NUL"), std::string::npos);
}

TEST_F(SecretFileTest, AMissingFileIsNamed) {
  try {
    readSecretFile(dir_ / "absent");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "password file '" + (dir_ / "absent").string() +
                                         "' cannot be read: No such file or directory");
  }
}

TEST_F(SecretFileTest, SystemdCredentialPathNeedsTheDirectory) {
  ::setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);
  EXPECT_EQ(systemdCredentialPath("broker-password"), dir_ / "broker-password");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  EXPECT_THROW(systemdCredentialPath("broker-password"), std::runtime_error);
}

}  // namespace
}  // namespace warren
