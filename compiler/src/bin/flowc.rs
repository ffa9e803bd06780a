//! The `flowc` command line: parses arguments and calls the driver.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Flow: a compiler for dataflow tensor programs.
#[derive(Parser)]
#[command(name = "flowc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// The reference interpreter of MIR.
    Interp,
}

#[derive(Clone, Copy, ValueEnum)]
enum Stage {
    /// The MIR of every graph the program dispatches, as lowered.
    Mir,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check files; print every diagnostic. Exit 1 on any error.
    Check {
        /// The `.flow` files to check (each checked as its own program).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a program's `main`. Arguments after `--` are the program's `args()`.
    Run {
        file: PathBuf,
        /// Which backend runs the operation graphs.
        #[arg(long, value_enum, default_value = "interp")]
        backend: Backend,
        /// Arguments passed to the program.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run the `test` blocks of a file, or of every `.flow` file in a directory.
    Test {
        path: PathBuf,
        #[arg(long, value_enum, default_value = "interp")]
        backend: Backend,
    },
    /// Print the intermediate representation of the graphs a program dispatches.
    Ir {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "mir")]
        stage: Stage,
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Check { files } => flowc::driver::cmd_check(&files),
        Command::Run {
            file,
            backend: Backend::Interp,
            args,
        } => flowc::driver::cmd_run(&file, args),
        Command::Test {
            path,
            backend: Backend::Interp,
        } => flowc::driver::cmd_test(&path),
        Command::Ir {
            file,
            stage: Stage::Mir,
            args,
        } => flowc::driver::cmd_ir(&file, args),
    };
    ExitCode::from(status.clamp(0, 255) as u8)
}
