# SPDX-License-Identifier: Apache-2.0
# What `cmake --install` puts where (folders: cmake/warrenInstallDirs.cmake).
# Included at the end of the top-level CMakeLists.txt, once every target exists.
#
# Components, one .deb each (packaging/CMakeLists.txt):
#   runtime  warrend, warren-call, warren-bench, the plugins, warren.yaml,
#            warrend.service, the documentation
#   dev      the plugin SDK: include/warren/plugin.h, plugin.hpp and the CMake
#            package config, so that find_package(warren) works
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

install(TARGETS warrend warren-call warren-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT runtime)
# plugins/upper installs itself, as an out-of-tree plugin would.
install(TARGETS warren_plugin_sum LIBRARY DESTINATION ${WARREN_INSTALL_PLUGINDIR}
        COMPONENT runtime)

# warren.yaml and warrend.service: their destination depends on the prefix
# given at install time (see cmake/warrenInstallDirs.cmake).
install(CODE "
  set(WARREN_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(WARREN_BINARY_DIR \"${PROJECT_BINARY_DIR}\")
  set(WARREN_SYSCONFDIR \"${WARREN_INSTALL_SYSCONFDIR}\")
  set(WARREN_UNITDIR \"${WARREN_INSTALL_UNITDIR}\")
  set(WARREN_PLUGINDIR \"${WARREN_INSTALL_PLUGINDIR}\")
  set(WARREN_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/warrenInstallSystemFiles.cmake\")"
        COMPONENT runtime)

# bash completion, loaded by bash-completion when a command is first completed.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/bash-completion/warrend
              ${PROJECT_SOURCE_DIR}/packaging/bash-completion/warren-call
              ${PROJECT_SOURCE_DIR}/packaging/bash-completion/warren-bench
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions COMPONENT runtime)

# The manual pages (docs/man), gzipped, each into man<section>.
foreach(page IN LISTS WARREN_MAN_PAGE_FILES)
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT runtime)
endforeach()

file(GLOB warren_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${warren_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT runtime)

# The plugin SDK.
install(FILES ${PROJECT_SOURCE_DIR}/include/warren/plugin.h
              ${PROJECT_SOURCE_DIR}/include/warren/plugin.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/warren COMPONENT dev)

# libwarren-client: the shared library alone in its runtime package
# (libwarren-client0), and for building against it, in warren-dev: the
# header, the libwarren-client.so link, the CMake target warren::client and
# the pkg-config file.
install(TARGETS warren_client_shared EXPORT warrenClientTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT libclient NAMELINK_COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/include/warren/client.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/warren COMPONENT dev)
install(EXPORT warrenClientTargets NAMESPACE warren:: FILE warrenClientTargets.cmake
        DESTINATION ${WARREN_INSTALL_CMAKEDIR} COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/client/warren-client.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# The plugin ABI version, read from the header so that it cannot drift.
file(STRINGS ${PROJECT_SOURCE_DIR}/include/warren/plugin.h warren_abi_lines
     REGEX "^#define WARREN_PLUGIN_ABI_(MAJOR|MINOR) [0-9]+$")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*" "\\1" WARREN_PLUGIN_ABI_MAJOR "${warren_abi_lines}")
string(REGEX REPLACE ".*MINOR ([0-9]+).*" "\\1" WARREN_PLUGIN_ABI_MINOR "${warren_abi_lines}")

set(warren_config_dir ${PROJECT_BINARY_DIR}/cmake/package)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/warrenConfig.cmake.in
                              ${warren_config_dir}/warrenConfig.cmake
                              INSTALL_DESTINATION ${WARREN_INSTALL_CMAKEDIR}
                              PATH_VARS CMAKE_INSTALL_INCLUDEDIR WARREN_INSTALL_PLUGINDIR)
# Version 0.x: a request for 0.1 accepts any 0.y. The plugin ABI has its own
# versioning (WARREN_PLUGIN_ABI_MAJOR), checked by warrend at load time. Not
# ARCH_INDEPENDENT: warren::client is a library of one architecture.
write_basic_package_version_file(${warren_config_dir}/warrenConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${warren_config_dir}/warrenConfig.cmake
              ${warren_config_dir}/warrenConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/warrenAddPlugin.cmake
        DESTINATION ${WARREN_INSTALL_CMAKEDIR} COMPONENT dev)
