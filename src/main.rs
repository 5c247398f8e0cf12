//! The `grace` binary: parses arguments, maps errors to exit codes (0 success, 1
//! failure at run time, 2 bad usage or bad configuration).

use clap::Parser;
use grace::cli::{self, Cli};

// Every kernel is a ractor actor with its own mailboxes and task: starting and
// restarting them is allocation-heavy and spread over the runtime's worker threads.
// mimalloc's per-thread heaps make a spawn several times cheaper than glibc's arenas,
// which grow a worker's heap a few pages at a time (benches/supervisor.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Err(err) if cli::reader_went_away(&err) => std::process::exit(0),
        Err(err) => {
            // Never `eprintln!`: a closed stderr would turn the error into a panic.
            let _ = grace::telemetry::write_stderr(format!("error: {err:#}\n").as_bytes());
            std::process::exit(cli::exit_status(&err));
        }
    }
}
