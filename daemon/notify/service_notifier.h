// SPDX-License-Identifier: Apache-2.0
// Tells systemd how warrend is doing (sd_notify(3)) for Type=notify units:
// READY=1 once every consumer is connected, RELOADING=1 ... READY=1 around a
// reload, STOPPING=1, STATUS= lines for `systemctl status`, WATCHDOG=1 pings.
//
// Every call is a no-op that succeeds when $NOTIFY_SOCKET is unset (not
// started by systemd). The environment is left as is, so calls keep working
// for the life of the process. Thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>

namespace warren {

class ServiceNotifier {
 public:
  // Whether $NOTIFY_SOCKET is set, i.e. whether anything is sent.
  bool enabled() const;

  // "READY=1\nSTATUS=<status>": start-up or a reload is complete.
  std::error_code ready(std::string_view status) const;
  // "RELOADING=1\nMONOTONIC_USEC=<now>\nSTATUS=<status>": follow with ready().
  // MONOTONIC_USEC is what Type=notify-reload (systemd 253+) requires; older
  // managers ignore it.
  std::error_code reloading(std::string_view status) const;
  // "STOPPING=1\nSTATUS=<status>": shutdown has begun.
  std::error_code stopping(std::string_view status) const;
  // "STATUS=<text>": a one-line state for humans.
  std::error_code status(std::string_view text) const;
  // "WATCHDOG=1": send only while the daemon makes progress.
  std::error_code watchdog() const;

  // WatchdogSec= of the unit (from $WATCHDOG_USEC, if $WATCHDOG_PID is unset
  // or this process); zero when the watchdog is off. Ping at half of it.
  std::chrono::microseconds watchdogInterval() const;

 private:
  std::error_code send(const std::string& message) const;
};

}  // namespace warren
