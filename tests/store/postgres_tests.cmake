# PostgreSQL-specific store tests, and libpq for the contract suite's postgres backend. The tests
# skip when HERALD_TEST_POSTGRES_URL is unset (scripts/pg-temp start prints one).
if(HERALD_WITH_POSTGRES)
  if(HERALD_TEST_POSTGRES)
    target_link_libraries(store_contract_test PRIVATE PostgreSQL::PostgreSQL)
    # gtest_discover_tests lists the contract suite at build time, when HERALD_TEST_POSTGRES_URL
    # is usually not set yet (scripts/test starts the server after building), so its postgres
    # instances would never reach ctest. This one entry runs them at test time, and reports
    # "skipped" when no server is given.
    add_test(NAME store_contract_test_postgres
             COMMAND sh -c "if [ -z \"$HERALD_TEST_POSTGRES_URL\" ]; then echo 'HERALD_TEST_POSTGRES_URL is not set'; exit 77; fi; exec \"$0\" --gtest_filter='*/postgres'"
                     $<TARGET_FILE:store_contract_test>)
    set_tests_properties(store_contract_test_postgres PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  endif()
  add_executable(postgres_store_test postgres_store_test.cpp postgres_backend.cpp)
  target_link_libraries(postgres_store_test PRIVATE herald_store herald_postgres herald_warnings
                        PostgreSQL::PostgreSQL GTest::gtest_main)
  target_include_directories(postgres_store_test PRIVATE ${PROJECT_SOURCE_DIR}/src)
  gtest_discover_tests(postgres_store_test DISCOVERY_TIMEOUT 60)
endif()
