// SPDX-License-Identifier: Apache-2.0
// What GET /ready answers: whether warrend serves every configured queue
// fully, and if not, what is missing.
#pragma once

#include <functional>
#include <string>

namespace warren {

struct Readiness {
  bool ready = false;
  // Why not, for a human and a load balancer's log, e.g.
  // "queue 'sum': 3/5 consumers connected". Empty when ready.
  std::string detail;
};

// Called on an HTTP server thread for each GET /ready, concurrently with
// everything else: it must be thread-safe and quick (no broker round trip).
using ReadinessCheck = std::function<Readiness()>;

}  // namespace warren
