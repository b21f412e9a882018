// SPDX-License-Identifier: Apache-2.0
// warren.yaml(5): the configuration file's manual page, in roff, rendered
// from the schema (config_schema.h) like the key tables of
// docs/configuration.md, so that the two cannot drift apart.
#pragma once

#include <string>
#include <string_view>

namespace warren {

// The page for warren `version`, with `example` (a configuration file, such
// as config/warren.yaml) in its EXAMPLE section.
std::string renderConfigManPage(std::string_view version, std::string_view example);

}  // namespace warren
