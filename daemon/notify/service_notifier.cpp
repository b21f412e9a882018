// SPDX-License-Identifier: Apache-2.0
#include "service_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>

namespace warren {
namespace {

// A newline in STATUS= would start another assignment: keep it on one line.
std::string statusLine(std::string_view text) {
  std::string line = "STATUS=";
  for (const char c : text) line += (c == '\n' || c == '\r') ? ' ' : c;
  return line;
}

std::uint64_t monotonicMicroseconds() {
  timespec now{};
  static_cast<void>(clock_gettime(CLOCK_MONOTONIC, &now));
  return static_cast<std::uint64_t>(now.tv_sec) * 1000000U +
         static_cast<std::uint64_t>(now.tv_nsec) / 1000U;
}

}  // namespace

bool ServiceNotifier::enabled() const {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && *socket != '\0';
}

std::error_code ServiceNotifier::ready(std::string_view status) const {
  return send("READY=1\n" + statusLine(status));
}

std::error_code ServiceNotifier::reloading(std::string_view status) const {
  return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonicMicroseconds()) + "\n" +
              statusLine(status));
}

std::error_code ServiceNotifier::stopping(std::string_view status) const {
  return send("STOPPING=1\n" + statusLine(status));
}

std::error_code ServiceNotifier::status(std::string_view text) const {
  return send(statusLine(text));
}

std::error_code ServiceNotifier::watchdog() const { return send("WATCHDOG=1"); }

std::chrono::microseconds ServiceNotifier::watchdogInterval() const {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0) return {};
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec));
}

std::error_code ServiceNotifier::send(const std::string& message) const {
  const int result = sd_notify(/*unset_environment=*/0, message.c_str());
  if (result < 0) return {-result, std::generic_category()};
  return {};
}

}  // namespace warren
