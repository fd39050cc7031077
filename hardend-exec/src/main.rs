//! hardend-exec: parse the arguments, confine, exec (see the library for what it does).

use clap::Parser;

fn main() {
    let code = hardend_exec::run(hardend_exec::Args::parse());
    std::process::exit(code);
}
