// SPDX-License-Identifier: Apache-2.0
// What this test process holds, read from /proc: open descriptors, child
// processes (zombies among them) and resident memory. For tests that end
// many workers and check that nothing is left behind. Header-only, so that
// unit tests without the support library can use it.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace warren::test {

// Open file descriptors of this process.
inline int openFds() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count - 3;  // ".", ".." and the DIR's own
}

struct Children {
  int all = 0;
  int zombies = 0;
};

// Children of this process, and how many of them are zombies.
inline Children children() {
  Children found;
  DIR* dir = opendir("/proc");
  while (const dirent* entry = readdir(dir)) {
    std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so from the last ')'.
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid != getpid()) continue;
    ++found.all;
    if (state == 'Z') ++found.zombies;
  }
  closedir(dir);
  return found;
}

// Resident memory of this process.
inline long residentKiB() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Sanitizers keep freed memory (ASan's quarantine) and histories (TSan) on
// purpose, so resident memory says nothing there; ASan's leak check covers
// that build at exit.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kMeasuresMemory = false;
#else
inline constexpr bool kMeasuresMemory = true;
#endif

}  // namespace warren::test
