// SPDX-License-Identifier: Apache-2.0
// The "sum" handler plugin: body "a,b" -> the decimal sum, as the seed's
// Python server replies. The logic lives in sum_parser.cpp.
#include <warren/plugin.hpp>

#include "sum_parser.h"

namespace {

class Sum {
 public:
  explicit Sum(const warren::Options& options) { options.rejectUnknown({}); }

  void handle(const warren::Request& request, warren::Reply& reply) const {
    const warren::sum::Outcome outcome = warren::sum::compute(request.body());
    if (outcome.ok) {
      reply.contentType("text/plain");
      reply.write(outcome.text);
    } else {
      reply.error(outcome.code, outcome.text);
    }
  }
};

}  // namespace

WARREN_PLUGIN(Sum, "sum", "1.0.0", "Adds two integers: body 'a,b' -> decimal sum")
