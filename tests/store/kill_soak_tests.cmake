# Kill -9 soak (store_kill_soak_test): a child (store_kill_child) appending from four threads is
# SIGKILLed HERALD_SOAK_TRIALS times (default 10) per backend; scripts/soak [trials] runs more.
# Included from tests/store/CMakeLists.txt.
add_executable(store_kill_child ${CMAKE_CURRENT_LIST_DIR}/store_kill_child.cpp)
target_link_libraries(store_kill_child PRIVATE herald_store herald_warnings nlohmann_json::nlohmann_json)

add_executable(store_kill_soak_test ${CMAKE_CURRENT_LIST_DIR}/store_kill_soak_test.cpp)
target_link_libraries(store_kill_soak_test PRIVATE herald_store herald_warnings GTest::gtest_main
                      nlohmann_json::nlohmann_json)
target_include_directories(store_kill_soak_test PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(store_kill_soak_test PRIVATE HERALD_STORE_KILL_CHILD="$<TARGET_FILE:store_kill_child>")
if(HERALD_WITH_POSTGRES AND HERALD_TEST_POSTGRES)
  target_sources(store_kill_soak_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/postgres_backend.cpp)
  target_compile_definitions(store_kill_soak_test PRIVATE HERALD_TEST_POSTGRES=1)
  target_link_libraries(store_kill_soak_test PRIVATE herald_postgres PostgreSQL::PostgreSQL)
endif()
add_dependencies(store_kill_soak_test store_kill_child)
gtest_discover_tests(store_kill_soak_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS soak TIMEOUT 900)
