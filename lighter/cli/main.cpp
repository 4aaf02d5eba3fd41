// The `lighter` command.
#include <string>
#include <vector>

#include "lighter/cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return lighter::cli::run(args);
}
