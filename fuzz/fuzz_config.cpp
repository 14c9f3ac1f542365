// libFuzzer target: the configuration (src/system/config.cpp): a TOML file, flags and HERALD_*
// environment variables through parse_config. Input layout (fuzz/README.md): the TOML text, then
// a line "----", then one argument per line; a line "ENV NAME=value" is an environment variable
// instead. parse_config must answer a LoadedConfig or invalid_argument naming the source, and
// never throw.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "herald/system.h"

namespace {

const std::string& toml_path() {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("herald-fuzz-config-" + std::to_string(::getpid()) + ".toml")).string();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view toml = in;
  std::string_view rest;
  if (auto sep = in.find("\n----\n"); sep != std::string_view::npos) {
    toml = in.substr(0, sep);
    rest = in.substr(sep + 6);
  }
  {
    std::ofstream out(toml_path(), std::ios::binary | std::ios::trunc);
    out.write(toml.data(), static_cast<std::streamsize>(toml.size()));
  }
  std::vector<std::string> args = {"--config", toml_path()};
  std::map<std::string, std::string> env;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.starts_with("ENV ")) {
      line.remove_prefix(4);
      const auto eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    } else {
      args.emplace_back(line);
    }
  }
  herald::Result<herald::LoadedConfig> parsed = herald::Status::internal("not run");
  try {
    parsed = herald::parse_config(args, env, "fuzz");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_config: parse_config threw: %s\n", e.what());
    std::abort();
  }
  if (!parsed && parsed.status().code() != herald::StatusCode::invalid_argument) {
    std::fprintf(stderr, "fuzz_config: %s\n", parsed.status().to_string().c_str());
    std::abort();
  }
  if (parsed && !parsed->help && !parsed->version) {
    (void)parsed->config.effective_store_url();
  }
  return 0;
}
