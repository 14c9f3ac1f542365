# Debian packages with CPack (`cpack -G DEB` in the build directory, or `cmake --build … --target
# package`):
#   libherald-dev  headers, static libraries, CMake package, herald.pc   (component dev)
#   herald-shop    herald_shop, its systemd unit, /etc/herald/shop.toml  (component shop)
# Configure with -DCMAKE_INSTALL_PREFIX=/usr for packages: GNUInstallDirs then picks Debian's
# paths (lib/<multiarch>, /etc) and the unit names /usr/bin/herald_shop.
# Included from HeraldInstall.cmake.

# The shop: the binary, the unit (with this build's paths) and the default configuration.
if(TARGET herald_shop)
  set(HERALD_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "Where herald-shop.service is installed, relative to the prefix")
  configure_file(${PROJECT_SOURCE_DIR}/packaging/herald-shop.service.in
                 ${PROJECT_BINARY_DIR}/packaging/herald-shop.service @ONLY)
  install(TARGETS herald_shop RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT shop)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/herald-shop.service DESTINATION ${HERALD_SYSTEMD_UNIT_DIR}
          COMPONENT shop)
  # CMAKE_INSTALL_FULL_SYSCONFDIR is /etc for the /usr prefix, <prefix>/etc otherwise; install with
  # DESTDIR to stage it anywhere else.
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/shop.toml DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/herald
          COMPONENT shop)
  install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/configuration.md
                ${PROJECT_SOURCE_DIR}/docs/http-api.md ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/NOTICE
                ${PROJECT_SOURCE_DIR}/CHANGELOG.md
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/herald-shop COMPONENT shop)
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/herald-shop
          RENAME copyright COMPONENT shop)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libherald-dev
        RENAME copyright COMPONENT dev)

set(CPACK_PACKAGE_NAME herald)
set(CPACK_PACKAGE_VENDOR "Herald")
set(CPACK_PACKAGE_CONTACT "Herald maintainers <herald@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# Each package has its own synopsis (the first line of CPACK_DEBIAN_<COMPONENT>_DESCRIPTION). CPack
# puts any other summary above it, except its own default, which CPack would otherwise take from
# project(DESCRIPTION): so the summary is set to that default.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL dev)
if(TARGET herald_shop)
  list(APPEND CPACK_COMPONENTS_ALL shop)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# First line: the synopsis; CPack indents the rest as Debian's extended description.
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "Herald event store and event bus for C++20 (development files)
Static libraries, headers, the CMake package (find_package(herald COMPONENTS ...)) and herald.pc
for a durable event store (embedded SQLite, PostgreSQL), an event bus with durable subscriptions,
retries, dead letters and replay, a domain kit and an application shell with an HTTP server.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libherald-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# What consumers compile and link against: computed in HeraldInstall.cmake from the targets' link
# interfaces, plus the compiler itself (the headers are C++20).
list(JOIN HERALD_DEB_DEV_DEPENDS ", " herald_dev_depends)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${herald_dev_depends}")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "cmake (>= 3.25), pkgconf | pkg-config, g++ (>= 4:12) | clang (>= 1:14)")

set(CPACK_DEBIAN_SHOP_DESCRIPTION
    "Herald reference shop service
An event-sourced shop (users, carts, catalog, orders with a payment saga, e-mails) on the Herald
event store and bus. systemd runs it as the dedicated user herald with its state in
/var/lib/herald; its configuration is /etc/herald/shop.toml, its admin token /etc/herald/shop.env.")
set(CPACK_DEBIAN_SHOP_PACKAGE_NAME herald-shop)
set(CPACK_DEBIAN_SHOP_PACKAGE_SECTION net)
# dpkg-shlibdeps turns the binary's shared libraries into Depends (libsqlite3-0, libpq5, …).
set(CPACK_DEBIAN_SHOP_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_SHOP_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_SHOP_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/herald-shop/conffiles ${PROJECT_SOURCE_DIR}/packaging/deb/herald-shop/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/herald-shop/prerm ${PROJECT_SOURCE_DIR}/packaging/deb/herald-shop/postrm)

include(CPack)
