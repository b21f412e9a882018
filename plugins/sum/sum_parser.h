// SPDX-License-Identifier: Apache-2.0
// The sum handler's logic, apart from the plugin glue so it is unit-tested
// directly: body "a,b" -> decimal a+b, or an error saying what is wrong.
#pragma once

#include <warren/plugin.h>

#include <string>
#include <string_view>

namespace warren::sum {

struct Outcome {
  bool ok = false;
  std::string text;  // the decimal sum when ok, otherwise the error message
  warren_error_code code = WARREN_ERROR_INVALID_ARGUMENT;  // when !ok
};

Outcome compute(std::string_view body);

}  // namespace warren::sum
