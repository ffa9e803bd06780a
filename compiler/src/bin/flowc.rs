//! The `flowc` command line: parses arguments and calls the driver.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Flow: a compiler for dataflow tensor programs.
#[derive(Parser)]
#[command(name = "flowc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check files; print every diagnostic. Exit 1 on any error.
    Check {
        /// The `.flow` files to check (each checked as its own program).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Check { files } => flowc::driver::cmd_check(&files),
    };
    ExitCode::from(status.clamp(0, 255) as u8)
}
