# Install rules: headers, the static libraries, a CMake package (herald-config.cmake with one
# export set per component) and a pkg-config file (herald.pc); then the Debian packages
# (HeraldPackaging.cmake). Included last from the top-level CMakeLists.txt, when every target and
# its link libraries are known.
#
# What a consumer must be able to find is read from the targets themselves (their
# INTERFACE_LINK_LIBRARIES, where CMake records a static library's PRIVATE dependencies as
# $<LINK_ONLY:…>), so a dependency added to a target reaches herald-config.cmake, herald.pc and the
# package's Depends without anyone editing this file, or fails the configure step here, naming
# the dependency, instead of producing a package that does not link.
include(CMakePackageConfigHelpers)

set(HERALD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/herald)

# Components, in an order where each needs only earlier ones, and the targets in each. Every
# component is one export set and one herald-<component>-targets.cmake.
set(herald_components_core herald_core herald_memory)
set(herald_components_sqlite herald_sqlite)
set(herald_components_postgres herald_postgres)
set(herald_components_store herald_store)
set(herald_components_bus herald_bus)
set(herald_components_domain herald_domain)
set(herald_components_system herald_http herald_system)
set(HERALD_COMPONENTS "")
foreach(c core sqlite postgres store bus domain system)
  set(present "")
  foreach(t IN LISTS herald_components_${c})
    if(TARGET ${t})
      list(APPEND present ${t})
      set(herald_component_of_${t} ${c})
    endif()
  endforeach()
  set(herald_components_${c} ${present})
  if(present)
    list(APPEND HERALD_COMPONENTS ${c})
  endif()
endforeach()

# ---- how a consumer finds each external dependency ----
# herald_dependency(<imported target> FIND <cmake code> [PC <pkg-config module>] [LIBS <flags>]
#                   [DEB <Debian package>…])
function(herald_dependency target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "FIND;PC;LIBS" "DEB")
  set_property(GLOBAL PROPERTY herald_dep_find_${target} "${arg_FIND}")
  set_property(GLOBAL PROPERTY herald_dep_pc_${target} "${arg_PC}")
  set_property(GLOBAL PROPERTY herald_dep_libs_${target} "${arg_LIBS}")
  set_property(GLOBAL PROPERTY herald_dep_deb_${target} "${arg_DEB}")
  set_property(GLOBAL PROPERTY herald_dep_known_${target} TRUE)
endfunction()

herald_dependency(Threads::Threads FIND "find_dependency(Threads)" LIBS "-pthread")
herald_dependency(nlohmann_json::nlohmann_json FIND "find_dependency(nlohmann_json 3.10)" PC nlohmann_json
                  DEB nlohmann-json3-dev)
herald_dependency(spdlog::spdlog FIND "find_dependency(spdlog)" PC spdlog DEB libspdlog-dev)
herald_dependency(fmt::fmt FIND "find_dependency(fmt)" PC fmt DEB libfmt-dev)
herald_dependency(simdjson::simdjson FIND "find_dependency(simdjson)" PC simdjson DEB libsimdjson-dev)
herald_dependency(SQLite::SQLite3 FIND "find_dependency(SQLite3)" PC sqlite3 DEB libsqlite3-dev)
herald_dependency(PostgreSQL::PostgreSQL FIND "find_dependency(PostgreSQL)" PC libpq DEB libpq-dev)
herald_dependency(CLI11::CLI11 FIND "find_dependency(CLI11 CONFIG)" PC CLI11 DEB libcli11-dev)
herald_dependency(tomlplusplus::tomlplusplus FIND "find_dependency(tomlplusplus)" PC tomlplusplus
                  DEB libtomlplusplus-dev)
herald_dependency(CURL::libcurl FIND "find_dependency(CURL)" PC libcurl DEB libcurl4-openssl-dev)
herald_dependency(OpenSSL::SSL FIND "find_dependency(OpenSSL)" PC libssl DEB libssl-dev)
herald_dependency(OpenSSL::Crypto FIND "find_dependency(OpenSSL)" PC libcrypto DEB libssl-dev)
# cpp-httplib has no CMake package on Debian: the same pkg-config lookup as our own build, which
# names the imported target PkgConfig::HTTPLIB that the exported link interface refers to.
herald_dependency(PkgConfig::HTTPLIB
                  FIND [[find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::HTTPLIB)
  pkg_check_modules(HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
  if(NOT TARGET PkgConfig::HTTPLIB)
    set(herald_FOUND FALSE)
    set(herald_NOT_FOUND_MESSAGE "herald needs cpp-httplib (pkg-config module cpp-httplib; Debian: libcpp-httplib-dev)")
    return()
  endif()
endif()]]
                  PC cpp-httplib DEB libcpp-httplib-dev "pkgconf | pkg-config")
# Boost::<library> targets are handled together below (one find_dependency with COMPONENTS).

# The external dependencies (imported targets and plain link items) of a component's targets,
# and the herald components it needs.
function(herald_component_links component out_external out_components)
  set(external "")
  set(needs "")
  foreach(t IN LISTS herald_components_${component})
    get_target_property(links ${t} INTERFACE_LINK_LIBRARIES)
    if(NOT links)
      continue()
    endif()
    foreach(item IN LISTS links)
      # $<LINK_ONLY:x> (a static library's PRIVATE dependency) must still be linked: keep x.
      # $<BUILD_INTERFACE:x> is for this build tree only: drop it.
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
      # ::@(directory) markers: CMake's note of which folder a target_link_libraries() came from.
      if(item MATCHES "^\\$<BUILD_INTERFACE:" OR item MATCHES "^::@")
        continue()
      endif()
      if(item MATCHES "^\\$<")
        message(FATAL_ERROR "${t} links '${item}': cmake/HeraldInstall.cmake cannot tell what a consumer needs for it")
      endif()
      if(TARGET ${item})
        get_target_property(aliased ${item} ALIASED_TARGET)
        if(aliased)
          set(item ${aliased})
        endif()
      endif()
      if(DEFINED herald_component_of_${item})
        if(NOT herald_component_of_${item} STREQUAL component)
          list(APPEND needs ${herald_component_of_${item}})
        endif()
      elseif(item MATCHES "^herald_")
        message(FATAL_ERROR "${t} links ${item}, which is in no installed component (cmake/HeraldInstall.cmake)")
      else()
        list(APPEND external ${item})
      endif()
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES external)
  list(REMOVE_DUPLICATES needs)
  set(${out_external} ${external} PARENT_SCOPE)
  set(${out_components} ${needs} PARENT_SCOPE)
endfunction()

set(HERALD_PC_REQUIRES "")
set(HERALD_PC_LIBS_EXTRA "")
set(HERALD_DEB_DEV_DEPENDS "")
set(HERALD_COMPONENT_REQUIRES "")
foreach(c IN LISTS HERALD_COMPONENTS)
  herald_component_links(${c} external needs)
  # Transitive herald components, so the config file loads a component's prerequisites first.
  set(closure ${needs})
  foreach(n IN LISTS needs)
    list(APPEND closure ${herald_requires_${n}})
  endforeach()
  list(REMOVE_DUPLICATES closure)
  set(herald_requires_${c} ${closure})
  string(APPEND HERALD_COMPONENT_REQUIRES "set(_herald_requires_${c} \"${closure}\")\n")

  set(find_code "# Generated by cmake/HeraldInstall.cmake: what herald::${c}'s targets link.\n")
  set(boost_components "")
  foreach(item IN LISTS external)
    get_property(known GLOBAL PROPERTY herald_dep_known_${item})
    if(known)
      get_property(code GLOBAL PROPERTY herald_dep_find_${item})
      get_property(pc GLOBAL PROPERTY herald_dep_pc_${item})
      get_property(libs GLOBAL PROPERTY herald_dep_libs_${item})
      get_property(deb GLOBAL PROPERTY herald_dep_deb_${item})
      string(APPEND find_code "${code}\n")
      list(APPEND HERALD_PC_REQUIRES ${pc})
      list(APPEND HERALD_PC_LIBS_EXTRA ${libs})
      list(APPEND HERALD_DEB_DEV_DEPENDS ${deb})
    elseif(item MATCHES "^Boost::(.+)$")
      list(APPEND boost_components ${CMAKE_MATCH_1})
    elseif(TARGET ${item} OR item MATCHES "::")
      message(FATAL_ERROR "herald::${c} links ${item}: add a herald_dependency() line to cmake/HeraldInstall.cmake "
                          "saying how a consumer finds it")
    else()
      # A plain library name or linker flag (dl, m, -latomic): no package to find.
      if(item MATCHES "^-")
        list(APPEND HERALD_PC_LIBS_EXTRA ${item})
      else()
        list(APPEND HERALD_PC_LIBS_EXTRA -l${item})
      endif()
    endif()
  endforeach()
  if(boost_components)
    list(REMOVE_DUPLICATES boost_components)
    # Boost's CMake package always has `headers`; only compiled libraries are components to ask for.
    set(compiled ${boost_components})
    list(REMOVE_ITEM compiled headers boost)
    string(APPEND find_code "find_dependency(Boost ${Boost_VERSION_STRING} CONFIG")
    if(compiled)
      list(JOIN compiled " " joined)
      string(APPEND find_code " COMPONENTS ${joined}")
      foreach(b IN LISTS compiled)
        list(APPEND HERALD_PC_LIBS_EXTRA -lboost_${b})
        string(REPLACE "_" "-" b_deb ${b})
        list(APPEND HERALD_DEB_DEV_DEPENDS libboost-${b_deb}-dev)
      endforeach()
    endif()
    string(APPEND find_code ")\n")
    list(APPEND HERALD_DEB_DEV_DEPENDS libboost-dev)
  endif()
  file(WRITE ${PROJECT_BINARY_DIR}/herald-config/herald-${c}-dependencies.cmake "${find_code}")

  install(TARGETS ${herald_components_${c}} EXPORT herald-${c}-targets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
  install(EXPORT herald-${c}-targets NAMESPACE herald:: DESTINATION ${HERALD_CMAKE_DIR} COMPONENT dev)
  install(FILES ${PROJECT_BINARY_DIR}/herald-config/herald-${c}-dependencies.cmake
          DESTINATION ${HERALD_CMAKE_DIR} COMPONENT dev)
endforeach()
list(REMOVE_DUPLICATES HERALD_PC_REQUIRES)
list(REMOVE_DUPLICATES HERALD_PC_LIBS_EXTRA)
list(REMOVE_DUPLICATES HERALD_DEB_DEV_DEPENDS)

# ---- headers ----
set(herald_public_headers_exclude "")
if(NOT TARGET herald_system)
  # Without herald_system these would declare functions no installed library defines.
  set(herald_public_headers_exclude PATTERN system.h EXCLUDE PATTERN http.h EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/herald DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h" ${herald_public_headers_exclude})
install(FILES ${PROJECT_BINARY_DIR}/include/herald/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/herald
        COMPONENT dev)

# ---- CMake package ----
# 0.x: every minor release may change the API (semantic versioning's rule for 0.y.z), so a
# request for 0.1 accepts 0.1.z only. SameMajorVersion would let 0.2 satisfy it. From 1.0 on this
# becomes SameMajorVersion.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(herald_compatibility SameMinorVersion)
else()
  set(herald_compatibility SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/herald-config/herald-config-version.cmake
                                 COMPATIBILITY ${herald_compatibility})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/herald-config.cmake.in
                              ${PROJECT_BINARY_DIR}/herald-config/herald-config.cmake
                              INSTALL_DESTINATION ${HERALD_CMAKE_DIR})
install(FILES ${PROJECT_BINARY_DIR}/herald-config/herald-config.cmake
              ${PROJECT_BINARY_DIR}/herald-config/herald-config-version.cmake
        DESTINATION ${HERALD_CMAKE_DIR} COMPONENT dev)

# ---- pkg-config ----
# One module for the whole installation. The libraries are static, so their dependencies are in
# Requires and Libs, not the .private fields (which only `pkg-config --static` reads). The prefix is
# found relative to the .pc file itself, so the tree can be moved (dpkg -x into any root).
file(RELATIVE_PATH HERALD_PC_PREFIX_FROM_PCDIR /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" HERALD_PC_PREFIX_FROM_PCDIR "${HERALD_PC_PREFIX_FROM_PCDIR}")
set(HERALD_PC_LIBS "")
foreach(t herald_system herald_http herald_domain herald_bus herald_store herald_postgres herald_sqlite herald_memory herald_core)
  if(TARGET ${t})
    string(APPEND HERALD_PC_LIBS " -l${t}")
  endif()
endforeach()
list(JOIN HERALD_PC_REQUIRES ", " HERALD_PC_REQUIRES_TEXT)
list(JOIN HERALD_PC_LIBS_EXTRA " " HERALD_PC_LIBS_EXTRA_TEXT)
configure_file(${PROJECT_SOURCE_DIR}/cmake/herald.pc.in ${PROJECT_BINARY_DIR}/herald-config/herald.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/herald-config/herald.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)

install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/NOTICE ${PROJECT_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libherald-dev COMPONENT dev)

include(${CMAKE_CURRENT_LIST_DIR}/HeraldPackaging.cmake)
