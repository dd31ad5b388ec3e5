//! The `minibt` binary: parse arguments, start logging, run, map errors to an exit code.

fn main() {
    std::process::exit(minibt::cli::main_with_args(
        std::env::args_os().skip(1).collect(),
    ));
}
