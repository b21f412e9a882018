# SPDX-License-Identifier: Apache-2.0
# Runs at install time (cmake --install, cpack), from the install(CODE) in
# cmake/warrenInstall.cmake, which sets:
#   WARREN_SOURCE_DIR, WARREN_BINARY_DIR
#   WARREN_SYSCONFDIR   may be empty (then /etc for prefix /usr, else <prefix>/etc)
#   WARREN_UNITDIR      may be empty (then /lib/systemd/system for /usr, else <prefix>/lib/...)
#   WARREN_PLUGINDIR    relative to the prefix, or absolute
#   WARREN_BINDIR       relative to the prefix, or absolute
# Installs warren/warren.yaml and warrend.service with the paths in them
# (plugins.dir, ExecStart=, --config) pointing at where this install puts
# things. For the .deb (prefix /usr) both files are copied unchanged.

function(warren_absolute out path)
  if(IS_ABSOLUTE "${path}")
    set(${out} "${path}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${path}" PARENT_SCOPE)
  endif()
endfunction()

string(REGEX REPLACE "/$" "" prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(default_etc "/etc")
  set(default_unitdir "/lib/systemd/system")
else()
  set(default_etc "${prefix}/etc")
  set(default_unitdir "${prefix}/lib/systemd/system")
endif()
if(WARREN_SYSCONFDIR STREQUAL "")
  set(etc "${default_etc}")
else()
  warren_absolute(etc "${WARREN_SYSCONFDIR}")
endif()
if(WARREN_UNITDIR STREQUAL "")
  set(unitdir "${default_unitdir}")
else()
  warren_absolute(unitdir "${WARREN_UNITDIR}")
endif()
warren_absolute(plugindir "${WARREN_PLUGINDIR}")
warren_absolute(bindir "${WARREN_BINDIR}")

# Rewrites `from` to `to` in `text`; the file must hold `from`, or the
# rewrite would silently leave a path pointing elsewhere.
function(warren_rewrite text_var from to what)
  string(FIND "${${text_var}}" "${from}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${what} no longer contains '${from}': "
                        "update cmake/warrenInstallSystemFiles.cmake")
  endif()
  string(REPLACE "${from}" "${to}" text "${${text_var}}")
  set(${text_var} "${text}" PARENT_SCOPE)
endfunction()

file(READ "${WARREN_SOURCE_DIR}/config/warren.yaml" config)
warren_rewrite(config "  dir: /usr/lib/warren/plugins\n" "  dir: ${plugindir}\n"
               "config/warren.yaml")

file(READ "${WARREN_SOURCE_DIR}/systemd/warrend.service" unit)
warren_rewrite(unit "ExecStart=/usr/bin/warrend --config /etc/warren/warren.yaml\n"
               "ExecStart=${bindir}/warrend --config ${etc}/warren/warren.yaml\n"
               "systemd/warrend.service")

# A folder of its own per run: cpack and a staged install may run at once.
string(RANDOM LENGTH 16 run)
set(staging "${WARREN_BINARY_DIR}/CMakeFiles/warren-install-${run}")
file(WRITE "${staging}/warren.yaml" "${config}")
file(WRITE "${staging}/warrend.service" "${unit}")
file(INSTALL DESTINATION "${etc}/warren" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${staging}/warren.yaml")
file(INSTALL DESTINATION "${unitdir}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${staging}/warrend.service")
file(REMOVE_RECURSE "${staging}")
