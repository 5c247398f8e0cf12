//! The `grace` binary: parses arguments, maps errors to exit codes (0 success, 1
//! failure at run time, 2 bad usage or bad configuration).

use clap::Parser;
use grace::cli::{self, Cli};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(cli::exit_status(&err));
        }
    }
}
