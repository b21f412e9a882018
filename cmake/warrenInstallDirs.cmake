# SPDX-License-Identifier: Apache-2.0
# Where `cmake --install` and the .deb put warren's files. Included near the
# top of the top-level CMakeLists.txt, before any install() rule;
# cmake/warrenInstall.cmake holds the rules themselves.
#
#   cmake --install build --prefix /tmp/stage    a staged tree, everything under /tmp/stage
#   cpack (packaging/)                           /usr, /etc and /lib/systemd/system
#
# The configuration file and the systemd unit live outside the prefix when it
# is /usr (/etc, /lib/systemd/system), and under it otherwise. That choice is
# made at install time, not here, so one build tree serves both a staged
# install with --prefix and the .deb (cpack installs it with prefix /usr).
include_guard(GLOBAL)
# Libraries (libwarren-client) go to the multiarch folder, as Debian puts
# them (lib/x86_64-linux-gnu), whatever the configure-time prefix: cpack
# installs with prefix /usr a tree configured for /usr/local.
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(CMAKE_INSTALL_LIBDIR "lib/${CMAKE_LIBRARY_ARCHITECTURE}" CACHE PATH
      "Object code libraries (LIBDIR)")
endif()
include(GNUInstallDirs)

# install() rules that name no component belong to the warren package, not to
# a separate "Unspecified" one that no .deb would carry.
set(CMAKE_INSTALL_DEFAULT_COMPONENT_NAME runtime)
# Folders created by install() are 0755 whatever the umask (lintian checks).
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

# Not multiarch: a plugin is loaded by warrend, never linked, so the folder is
# private to warren (Debian policy 9.1.1). config/warren.yaml names
# /usr/lib/warren/plugins; an install elsewhere rewrites that line.
set(WARREN_INSTALL_PLUGINDIR "lib/warren/plugins" CACHE STRING
    "Folder of the handler plugins, relative to the install prefix or absolute")
set(WARREN_INSTALL_SYSCONFDIR "" CACHE STRING
    "Folder that receives warren/warren.yaml; empty: /etc for prefix /usr, else <prefix>/etc")
set(WARREN_INSTALL_UNITDIR "" CACHE STRING
    "Folder of warrend.service; empty: /lib/systemd/system for prefix /usr, else under <prefix>")
set(WARREN_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/warren" CACHE STRING
    "Folder of the CMake package config (warrenConfig.cmake), relative to the install prefix")

# What plugins/*/CMakeLists.txt install into, in the tree and (absolute) from
# the package config alike.
set(WARREN_PLUGIN_INSTALL_DIR "${WARREN_INSTALL_PLUGINDIR}")
