# PostgreSQL-specific store tests, and libpq for the contract suite's postgres backend. The tests
# skip when HERALD_TEST_POSTGRES_URL is unset (scripts/pg-temp start prints one).
if(HERALD_WITH_POSTGRES)
  if(HERALD_TEST_POSTGRES)
    target_link_libraries(store_contract_test PRIVATE PostgreSQL::PostgreSQL)
  endif()
  add_executable(postgres_store_test postgres_store_test.cpp postgres_backend.cpp)
  target_link_libraries(postgres_store_test PRIVATE herald_store herald_postgres herald_warnings
                        PostgreSQL::PostgreSQL GTest::gtest_main)
  target_include_directories(postgres_store_test PRIVATE ${PROJECT_SOURCE_DIR}/src)
  gtest_discover_tests(postgres_store_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS sanitize)
endif()
