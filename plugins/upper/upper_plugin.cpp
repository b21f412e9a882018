// SPDX-License-Identifier: Apache-2.0
// The "upper" handler plugin: replies with the request body upper-cased (or
// lower-cased), after an optional prefix. The logic is in upper_case.cpp; this
// file is the glue plugin.hpp needs: a class built from the queue's options,
// a thread-safe handle(), and WARREN_PLUGIN to export it.
#include <warren/plugin.hpp>

#include <string>

#include "upper_case.h"

namespace {

class Upper {
 public:
  // Throws warren::OptionError for bad options: warrend then refuses to
  // start (or to apply a reload) and names the option.
  Upper(const warren::Options& options, warren::Log log)
      : settings_(warren::upper::readSettings(options)) {
    log(WARREN_LOG_DEBUG, "mode " + std::string(warren::upper::modeName(settings_.mode)) +
                              ", prefix of " + std::to_string(settings_.prefix.size()) + " bytes");
  }

  // Called from several threads at once: it only reads settings_.
  void handle(const warren::Request& request, warren::Reply& reply) const {
    const std::string text = warren::upper::convert(settings_, request.body());
    reply.contentType(request.contentType().empty() ? "text/plain" : request.contentType());
    reply.write(text);
  }

 private:
  const warren::upper::Settings settings_;
};

}  // namespace

WARREN_PLUGIN(Upper, "upper", WARREN_UPPER_VERSION,
              "Replies with the body upper- or lower-cased, after an optional prefix")
