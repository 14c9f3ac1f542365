// The library's own version and build, fixed when herald_core is compiled (HERALD_BUILD_TYPE comes
// from src/CMakeLists.txt).
#include "herald/version.h"

#ifndef HERALD_BUILD_TYPE
#define HERALD_BUILD_TYPE ""
#endif

#define HERALD_STR2(x) #x
#define HERALD_STR(x) HERALD_STR2(x)

namespace herald {

namespace {

// clang defines __GNUC__ too, so it is tested first.
#if defined(__clang__)
constexpr std::string_view kCompiler =
    "clang " HERALD_STR(__clang_major__) "." HERALD_STR(__clang_minor__) "." HERALD_STR(__clang_patchlevel__);
#elif defined(__GNUC__)
constexpr std::string_view kCompiler = "gcc " HERALD_STR(__GNUC__) "." HERALD_STR(__GNUC_MINOR__) "." HERALD_STR(__GNUC_PATCHLEVEL__);
#else
constexpr std::string_view kCompiler = "unknown";
#endif

}  // namespace

std::string_view version() noexcept { return HERALD_VERSION_STRING; }

BuildInfo build_info() noexcept { return BuildInfo{HERALD_VERSION_STRING, kCompiler, HERALD_BUILD_TYPE}; }

}  // namespace herald
