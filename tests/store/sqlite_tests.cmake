# Behaviour specific to the SQLite backend (group commit, schema versions, poisoning, ...).
# Included from tests/store/CMakeLists.txt.
add_executable(sqlite_store_test ${CMAKE_CURRENT_LIST_DIR}/sqlite_store_test.cpp)
target_link_libraries(sqlite_store_test
  PRIVATE herald_store herald_sqlite herald_warnings GTest::gtest_main PkgConfig::SQLITE3)
target_include_directories(sqlite_store_test PRIVATE ${PROJECT_SOURCE_DIR}/src)
gtest_discover_tests(sqlite_store_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS sanitize)

# The WAL under sustained appends with tailing readers (HERALD_SUSTAINED_SECONDS, default 60): slow
# by design, so not under the sanitizers.
add_executable(sqlite_sustained_test ${CMAKE_CURRENT_LIST_DIR}/sqlite_sustained_test.cpp)
target_link_libraries(sqlite_sustained_test PRIVATE herald_store herald_sqlite herald_warnings GTest::gtest_main)
target_include_directories(sqlite_sustained_test PRIVATE ${PROJECT_SOURCE_DIR}/src)
gtest_discover_tests(sqlite_sustained_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS sustained TIMEOUT 300)

# Online backup under write load, restore, and the consistency of what was restored.
add_executable(sqlite_backup_test ${CMAKE_CURRENT_LIST_DIR}/sqlite_backup_test.cpp)
target_link_libraries(sqlite_backup_test PRIVATE herald_bus herald_store herald_warnings GTest::gtest_main)
gtest_discover_tests(sqlite_backup_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS sanitize TIMEOUT 300)
