//! The `circuitscope` command line: parses the arguments and runs the subcommand (`cli/`).

mod cli;

use clap::Parser;

fn main() {
    // Exit quietly when stdout is closed early (e.g. piped into `head`), like other Unix tools.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    circuitscope::process::configure();
    if let Err(e) = cli::run(cli::Cli::parse()) {
        eprintln!("error: {}", cli::error_line(&e));
        std::process::exit(1);
    }
}
