# SPDX-License-Identifier: Apache-2.0
# warren_add_plugin(<target> <name> <source>...)
#
# Builds the handler plugin <name>.so from <source>...: a MODULE library (a
# shared object for dlopen(), never linked against), without the "lib" prefix
# (warrend loads <plugins.dir>/<handler>.so), with hidden visibility so that
# it exports only the entry point marked WARREN_PLUGIN_EXPORT, and compiled
# against the plugin SDK (the imported target warren::plugin).
#
# One definition serves both sides: warren's own tree includes this file, and
# so does the installed package config (find_package(warren)). Variables read
# at call time, both optional:
#   WARREN_PLUGIN_OUTPUT_DIR       folder the .so is built into (in the tree:
#                                  <build>/plugins, where the tests load it)
#   WARREN_PLUGIN_LINK_LIBRARIES   more private link items (in the tree: the
#                                  warnings-as-errors target)
include_guard(GLOBAL)

function(warren_add_plugin target name)
  if(NOT TARGET warren::plugin)
    message(FATAL_ERROR "warren_add_plugin(${target} ${name} ...): the target warren::plugin does "
                        "not exist; call find_package(warren REQUIRED) first")
  endif()
  add_library(${target} MODULE ${ARGN})
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
                        C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden
                        VISIBILITY_INLINES_HIDDEN ON)
  if(WARREN_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${WARREN_PLUGIN_OUTPUT_DIR})
  endif()
  # plugin.hpp needs C++17; a C plugin (plugin.h only) needs no C++ at all.
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(CXX IN_LIST languages)
    target_compile_features(${target} PRIVATE cxx_std_17)
  endif()
  target_link_libraries(${target} PRIVATE warren::plugin ${WARREN_PLUGIN_LINK_LIBRARIES})
endfunction()
