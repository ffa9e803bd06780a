//! `flowc run --ranks N`: starts the job under `mpirun` for the user — `N` ranks of this same
//! `flowc`, with the options the machines of this project need: `--oversubscribe` (more ranks
//! than cores), `--allow-run-as-root` when run as root, `--timeout` when asked (a hung job
//! ends), and `OMPI_MCA_mpi_yield_when_idle=1` (waiting ranks yield their core instead of
//! busy-polling, which on few cores starves the ranks that compute and the network stack),
//! and `OMPI_MCA_orte_allowed_exit_without_sync=1` for `mpirun` itself (see [`NO_SYNC`]).

use std::process::Command;

/// The environment variable that makes waiting MPI ranks yield their core.
const YIELD: &str = "OMPI_MCA_mpi_yield_when_idle";

/// The environment variable that stops `mpirun` from failing a job whose rank exited with
/// status 0 before `mpirun` recorded its `MPI_Finalize`. A rank's `MPI_Finalize` ends with
/// PMIx's finalize handshake with `mpirun`, which the rank waits for at most 2 seconds (a
/// fixed timer in the PMIx client); when `mpirun` is starved that long (a heavily loaded
/// machine), the rank exits, finalized, before `mpirun` has read its message, and Open MPI
/// 4 reports it as "exiting improperly" — after the job's complete, correct output. A flowc
/// rank never exits with 0 without `MPI_Finalize` (its other exits are `MPI_Abort`, an
/// abort signal or a non-zero status, which stay errors), so this only removes that race.
const NO_SYNC: &str = "OMPI_MCA_orte_allowed_exit_without_sync";

/// Runs `flowc COMMAND ARGS` (`run`, `run-mir`, `test` or `bench`; ARGS the command line without
/// `--ranks`/`--timeout`) as an MPI job of `ranks` processes; returns its exit status.
pub fn run_ranks(ranks: u32, timeout: Option<u32>, command: &str, run_args: &[String]) -> i32 {
    if !cfg!(feature = "mpi") {
        errln!(
            "error: --ranks needs a flowc built with MPI: `cargo build --release --features mpi` (see docs/distributed.md)"
        );
        return 2;
    }
    if ranks == 0 {
        errln!("error: --ranks needs at least 1 rank");
        return 2;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            errln!("error: cannot find the flowc executable to start on the ranks: {e}");
            return 1;
        }
    };
    let mut cmd = Command::new("mpirun");
    cmd.args(["-n", &ranks.to_string(), "--oversubscribe"]);
    if is_root() {
        cmd.arg("--allow-run-as-root");
    }
    if let Some(t) = timeout {
        cmd.args(["--timeout", &t.to_string()]);
    }
    cmd.args(["-x", &format!("{YIELD}=1")]);
    cmd.env(YIELD, "1");
    cmd.env(NO_SYNC, "1");
    cmd.arg(exe).arg(command).args(run_args);
    match cmd.status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            errln!("error: cannot start `mpirun`: {e} (install Open MPI: scripts/install-mpi.sh)");
            1
        }
    }
}

/// The command line of `flowc run` (or `run-mir`, `test`, `bench`) without `--ranks N` and `--timeout SECS` (in any of their
/// spellings), up to the program's arguments after `--`, which are kept as they are.
pub fn without_launch_flags(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a.clone());
            out.extend(it.cloned());
            break;
        }
        if a == "--ranks" || a == "--timeout" {
            it.next();
        } else if !(a.starts_with("--ranks=") || a.starts_with("--timeout=")) {
            out.push(a.clone());
        }
    }
    out
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::without_launch_flags;

    #[test]
    fn launch_flags_are_dropped_before_the_program_arguments_only() {
        let args: Vec<String> = [
            "--ranks",
            "4",
            "--threads=2",
            "--timeout=30",
            "p.flow",
            "--",
            "--ranks",
            "9",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            without_launch_flags(&args),
            ["--threads=2", "p.flow", "--", "--ranks", "9"]
        );
    }
}
