// SPDX-License-Identifier: Apache-2.0
#include "process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

namespace warren {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(const char* name, const char* help, MetricType type, double value) {
  MetricFamily result{name, help, type, {ClientMetric{}}};
  if (type == MetricType::Counter) {
    result.metric.front().counter.value = value;
  } else {
    result.metric.front().gauge.value = value;
  }
  return result;
}

// The fields of /proc/self/stat this needs (proc(5) numbering).
struct Stat {
  double utime_ticks = 0;      // 14
  double stime_ticks = 0;      // 15
  double starttime_ticks = 0;  // 22, since boot
  double vsize_bytes = 0;      // 23
  double rss_pages = 0;        // 24
};

std::optional<Stat> readStat() {
  std::ifstream file("/proc/self/stat");
  std::string text;
  if (!std::getline(file, text)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: the
  // fields are counted from the last ')'.
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  Stat stat;
  for (int number = 3; fields >> field; ++number) {
    switch (number) {
      case 14:
        stat.utime_ticks = std::stod(field);
        break;
      case 15:
        stat.stime_ticks = std::stod(field);
        break;
      case 22:
        stat.starttime_ticks = std::stod(field);
        break;
      case 23:
        stat.vsize_bytes = std::stod(field);
        break;
      case 24:
        stat.rss_pages = std::stod(field);
        return stat;
      default:
        break;
    }
  }
  return std::nullopt;
}

// The boot time, seconds since the epoch (`btime` of /proc/stat).
std::optional<double> bootTime() {
  std::ifstream file("/proc/stat");
  std::string key;
  double value = 0;
  while (file >> key) {
    if (key == "btime" && file >> value) return value;
    file.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::nullopt;
}

std::optional<double> openDescriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the descriptor of this very listing
}

}  // namespace

std::vector<MetricFamily> collectProcessMetrics() {
  std::vector<MetricFamily> families;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  try {
    if (const auto stat = readStat(); stat && ticks > 0) {
      families.push_back(
          family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 MetricType::Counter, (stat->utime_ticks + stat->stime_ticks) / ticks));
      families.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                                MetricType::Gauge, stat->rss_pages * page));
      families.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                MetricType::Gauge, stat->vsize_bytes));
      if (const auto boot = bootTime()) {
        families.push_back(family("process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  MetricType::Gauge, *boot + stat->starttime_ticks / ticks));
      }
    }
  } catch (const std::exception&) {
    // A /proc/self/stat this does not understand: no such series.
  }
  if (const auto open = openDescriptors()) {
    families.push_back(
        family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, *open));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    families.push_back(family("process_max_fds", "Maximum number of open file descriptors.",
                              MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return families;
}

}  // namespace warren
