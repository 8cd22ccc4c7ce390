// tracery's entry point: `tracery -config.file=tracery.yaml [-target=all]`. Flags are
// written as Tempo writes them (one dash); two dashes work too.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "server/app.h"
#include "server/config.h"

#include <sys/resource.h>

int main(int argc, char** argv) {
  // Go-style single-dash long flags -> CLI11's double-dash form.
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && arg.size() > 2 && arg[0] == '-' && arg[1] != '-') arg = "-" + arg;
    args.push_back(arg);
  }
  std::vector<char*> fixed;
  for (auto& a : args) fixed.push_back(a.data());

  CLI::App cli{"tracery: a distributed-tracing backend (OTLP in, Tempo's API out)"};
  std::string config_file, target;
  bool reference = false;
  cli.add_option("--config.file", config_file, "YAML configuration file (embedded defaults when omitted)");
  cli.add_option("--target", target, "roles to run (all)");
  cli.add_flag("--config.reference", reference, "print every configuration key as a Markdown table and exit");
  try {
    cli.parse(int(fixed.size()), fixed.data());
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (reference) {
    std::fputs(tracery::server::ConfigReference().c_str(), stdout);
    return 0;
  }

  auto config = config_file.empty() ? tracery::server::ParseConfig("", "defaults")
                                    : tracery::server::LoadConfigFile(config_file);
  if (!config.ok()) {
    std::fprintf(stderr, "tracery: configuration error: %s\n", config.status().message().c_str());
    return 2;
  }
  if (!target.empty()) {
    if (target != "all") {
      std::fprintf(stderr, "tracery: configuration error: -target: unknown role set '%s' (this version runs: all)\n",
                   target.c_str());
      return 2;
    }
    config->target = target;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  // Connections, WAL segments and block objects all take file descriptors: take the hard
  // limit (the common soft limit of 1024 runs out under a thousand idle clients).
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

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

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
