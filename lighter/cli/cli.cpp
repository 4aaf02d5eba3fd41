// The `lighter` command's implementation (filled in with the CLI work).
namespace lighter::cli {}
