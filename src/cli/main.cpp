// tracery's entry point, with Tempo's command line: `tracery -config.file=tempo.yaml
// [-config.expand-env=true] [-config.verify] [-target=all] [-<any.config-key>=value]`. Flags
// take one dash or two, `-name=value` or `-name value`, as Go's flag package reads them; a
// flag naming a configuration key in Tempo's spelling (dashes in its last part,
// `-server.http-listen-port=3300`) sets that key over the file's value.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "server/app.h"
#include "server/collector_config.h"
#include "server/config.h"
#include "server/gateway.h"

#include <sys/resource.h>

namespace {

const char* kUsage =
    "tracery: a distributed-tracing backend (OTLP, Jaeger and Zipkin in, Tempo's API out)\n"
    "  -config.file=<path>        YAML configuration (Tempo's keys; embedded defaults when omitted)\n"
    "  -config.expand-env=true    replace ${VAR}, ${VAR:-default} in the file from the environment\n"
    "  -config.verify             check the file and flags, print the problems, exit 0 or 2\n"
    "  -config.reference          print every configuration key as Markdown and exit\n"
    "  -target=all                roles: all (the backend), or sampler (the tail-sampling gateway:\n"
    "                             receivers and sampler, kept traces forwarded over OTLP; docs/gateway.md)\n"
    "  --config=<path>            the gateway's Collector-format file; may be given several times\n"
    "  -version                   print the version and exit\n"
    "  -log.level=info            debug, info, warn or error (server.log_level)\n"
    "  -multitenancy.enabled      require X-Scope-OrgID (multitenancy_enabled)\n"
    "  -<config.key>=<value>      any configuration key, e.g. -storage.trace.local.path=/data\n";

bool IsFalse(const std::string& value) { return value == "false" || value == "0" || value == "False" || value == "FALSE"; }

}  // namespace

namespace {
void RaiseFileLimit();
sigset_t BlockStopSignals();
bool LooksLikeCollectorFile(const std::vector<std::string>& files);
int RunGateway(const std::vector<std::string>& files, bool verify);
}  // namespace

int main(int argc, char** argv) {
  tracery::server::ConfigSources sources;
  std::vector<std::string> config_files;
  std::string target = "all";
  bool verify = false, reference = false, version = false;
  std::vector<std::string> problems;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      problems.push_back("unexpected argument '" + arg + "' (flags start with -)");
      continue;
    }
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    // Boolean flags stand alone; the others may take the next argument as Go's flags do.
    bool boolean = name == "config.expand-env" || name == "config.verify" || name == "config.reference" ||
                   name == "version" || name == "multitenancy.enabled" || name == "auth.enabled" || name == "help" ||
                   name == "h" || name.ends_with("enabled") || name == "use-otel-tracer" ||
                   name == "enable-go-runtime-metrics";
    if (!has_value && !boolean && i + 1 < argc) {
      value = argv[++i];
      has_value = true;
    }
    if (!has_value) value = "true";
    if (name == "help" || name == "h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (name == "config.file" || name == "config") {
      // Several files (the Collector's --config, repeated) are merged, for the gateway.
      config_files.push_back(value);
      sources.file = value;
    } else if (name == "config.expand-env") {
      sources.expand_env = !IsFalse(value);
    } else if (name == "config.verify") {
      verify = !IsFalse(value);
    } else if (name == "config.reference") {
      reference = !IsFalse(value);
    } else if (name == "version") {
      version = !IsFalse(value);
    } else if (name == "target") {
      if (value != "all" && value != "sampler")
        problems.push_back("-target: unknown role set '" + value + "' (roles: all, sampler)");
      target = value;
    } else {
      sources.key_flags.emplace_back(name, value);
    }
  }
  if (version) {
    std::printf("tracery, version %s\n", TRACERY_VERSION);
    return 0;
  }
  if (reference) {
    std::fputs(tracery::server::ConfigReference().c_str(), stdout);
    return 0;
  }
  for (const auto& problem : problems) std::fprintf(stderr, "tracery: configuration error: %s\n", problem.c_str());
  if (target == "sampler" || config_files.size() > 1 || LooksLikeCollectorFile(config_files)) {
    if (!problems.empty()) return 2;
    return RunGateway(config_files, verify);
  }
  auto config = tracery::server::LoadConfig(sources);
  if (!config.ok()) {
    std::fprintf(stderr, "tracery: configuration error: %s\n", config.status().message().c_str());
    return 2;
  }
  if (!problems.empty()) return 2;
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  if (!config->not_applicable.empty()) {
    std::string keys;
    for (const auto& key : config->not_applicable) keys += (keys.empty() ? "" : ", ") + key;
    spdlog::warn("tracery: accepted and not applied (Tempo settings that mean nothing in one tracery process; "
                 "docs/config.md says why): {}", keys);
  }
  if (verify) {
    std::printf("tracery: configuration is valid\n");
    return 0;
  }
  RaiseFileLimit();
  sigset_t signals = BlockStopSignals();
  auto app = tracery::server::App::Start(*config);
  if (!app.ok()) {
    std::fprintf(stderr, "tracery: cannot start: %s\n", app.status().ToString().c_str());
    return 1;
  }
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("tracery: signal {} received", received);
  (*app)->Stop();
  return 0;
}

namespace {

// Connections, WAL segments and block objects all take file descriptors: take the hard
// limit (the common soft limit of 1024 runs out under a thousand idle clients).
void RaiseFileLimit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    if (files.rlim_cur < files.rlim_max) {
      rlim_t wanted = files.rlim_max;
      files.rlim_cur = wanted;
      if (setrlimit(RLIMIT_NOFILE, &files) != 0) spdlog::warn("tracery: cannot raise the file descriptor limit");
      getrlimit(RLIMIT_NOFILE, &files);
    }
    spdlog::info("tracery: file descriptor limit {}", static_cast<unsigned long long>(files.rlim_cur));
  }
}

// Blocks the stop signals in every thread; the main thread waits for them.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

// A file with the Collector's top-level sections (receivers, exporters, service).
bool LooksLikeCollectorFile(const std::vector<std::string>& files) {
  if (files.empty()) return false;
  try {
    return tracery::server::LooksLikeCollectorConfig(YAML::LoadFile(files.front()));
  } catch (const YAML::Exception&) {
    return false;  // the backend's reader reports the problem with its line
  }
}

int RunGateway(const std::vector<std::string>& files, bool verify) {
  if (files.empty()) {
    std::fprintf(stderr, "tracery: configuration error: -target=sampler needs a Collector-format file (--config=<path>)\n");
    return 2;
  }
  auto config = tracery::server::LoadCollectorConfig(files);
  if (!config.ok()) {
    std::fprintf(stderr, "tracery: configuration error: %s\n", config.status().message().c_str());
    return 2;
  }
  if (verify) {
    std::printf("tracery: gateway configuration is valid\n");
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  RaiseFileLimit();
  sigset_t signals = BlockStopSignals();
  auto gateway = tracery::server::Gateway::Start(*config);
  if (!gateway.ok()) {
    std::fprintf(stderr, "tracery: cannot start the gateway: %s\n", gateway.status().ToString().c_str());
    return 1;
  }
  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("tracery: signal {} received", received);
  (*gateway)->Stop();
  return 0;
}

}  // namespace
