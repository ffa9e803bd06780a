//! `flowc build`: ahead-of-time executables, and their run time.
//!
//! **Build.** The program is checked (the same diagnostics as `flowc check`), then its `main`
//! runs once as a *trace*, on the JIT, with the arguments given after `--`, reading real
//! files but writing nothing and printing nothing, for at most `--trace-time` (10 s by
//! default): every kernel the trace dispatches is recorded by structure. `codegen::object` compiles those kernels into an object file with
//! their table, the program image and a `main`; the system C compiler links it with the
//! static runtime library (`libflowc.a`, see [`runtime_library`] for where it is found), under `-Wl,--gc-sections`,
//! which leaves out everything `flow_aot_main` cannot reach — Cranelift among it.
//!
//! **Run.** `main` calls [`flow_aot_main`], which checks the embedded program again (a few
//! milliseconds: run-time errors are reported against its source, exactly as `flowc run`
//! reports them) and runs it on the native executor with the compiled kernels
//! ([`crate::native::Table`]). The coordinator builds, fuses and optimizes graphs at run time
//! exactly as under `flowc run`, so the same graphs are dispatched; kernels are
//! shape-polymorphic, so a kernel traced at one size serves every size. A node whose
//! structure the trace never met (another branch, a shape-dependent rewrite) runs on the
//! reference interpreter, with the same results; `FLOW_AOT_STATS=1` counts them.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flow_runtime::abi::AotKernel;
use flow_runtime::profile::Hooks;

use super::{compile_or_report, missing_main, report, run_compiled, stderr_config, RuntimeFlags};
use crate::exec::RunOptions;
use crate::mir::ir::{Graph, NodeId};
use crate::native::{structure_key, KernelLookup, Kernels, NativeError, Table};

/// The first bytes of a program image.
const MAGIC: &[u8; 8] = b"FLOWAOT1";

/// The program an executable carries: the path it was built from (as `flowc run` would
/// name it in messages), its source, and whether it was built with `--portable-math`.
#[derive(Debug, PartialEq, Eq)]
pub struct Image {
    pub path: String,
    pub source: String,
    pub portable_math: bool,
}

impl Image {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for part in [&self.path, &self.source] {
            out.extend((part.len() as u64).to_le_bytes());
            out.extend(part.as_bytes());
        }
        out.push(u8::from(self.portable_math));
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Image> {
        let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let mut part = || -> Option<String> {
            let (len, tail) = rest.split_first_chunk::<8>()?;
            let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
            let text = tail.get(..len)?;
            rest = &tail[len..];
            String::from_utf8(text.to_vec()).ok()
        };
        let (path, source) = (part()?, part()?);
        let portable_math = match rest {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        Some(Image {
            path,
            source,
            portable_math,
        })
    }
}

/// The kernels a trace needed: each structure once, with a graph holding its node.
type Recorded = Rc<RefCell<Vec<(String, Graph, NodeId)>>>;

/// The JIT, recording every kernel it is asked for.
struct Recorder {
    jit: crate::codegen::Jit,
    seen: HashSet<String>,
    recorded: Recorded,
}

impl Kernels for Recorder {
    fn kernel(&mut self, g: &Graph, id: NodeId, hooks: &Hooks) -> KernelLookup {
        let key = structure_key(g, &g.nodes[id]);
        if self.seen.insert(key.clone()) {
            self.recorded.borrow_mut().push((key, g.clone(), id));
        }
        self.jit.kernel(g, id, hooks)
    }
}

/// The flags of `flowc build`.
#[derive(Clone, Debug)]
pub struct BuildFlags {
    /// The executable to write (default: the file's stem, in the current directory).
    pub output: Option<PathBuf>,
    /// The program's arguments during the trace run.
    pub trace_args: Vec<String>,
    /// Threads for the trace run (default: every core).
    pub threads: Option<usize>,
    /// How long the trace may run: a training loop repeats the structures of its first
    /// steps, so the kernels are usually all met long before the run would end.
    pub trace_time: std::time::Duration,
    /// `--portable-math`: the trace run and the executable compute machine-independent bits
    /// (`flow_runtime::portable`; the executable always does, whatever its options).
    pub portable_math: bool,
    /// `--mpi`: the executable runs as one rank of an MPI job under `mpirun`.
    pub mpi_ranks: bool,
}

/// `flowc build FILE [-o OUT] [-- ARGS]`: writes a native executable. Exit status 1 on an
/// error in the program or when linking fails.
pub fn cmd_build(path: &Path, flags: &BuildFlags) -> i32 {
    if flags.mpi_ranks && !cfg!(feature = "mpi") {
        errln!(
            "error: --mpi needs a flowc built with MPI: `cargo build --release --features mpi` (see docs/distributed.md)"
        );
        return 2;
    }
    let cfg = stderr_config();
    let Some(c) = compile_or_report(path, cfg) else {
        return 1;
    };
    if c.program.main.is_none() {
        err!("{}", report::render(&c.sources, &missing_main(path), cfg));
        return 1;
    }
    let output = flags.output.clone().unwrap_or_else(|| {
        PathBuf::from(path.file_stem().unwrap_or(std::ffi::OsStr::new("a.out")))
    });
    // The trace.
    let recorded: Recorded = Rc::default();
    let factory = {
        let recorded = recorded.clone();
        Rc::new(move || -> Result<Box<dyn Kernels>, NativeError> {
            Ok(Box::new(Recorder {
                jit: crate::codegen::Jit::new()?,
                seen: HashSet::new(),
                recorded: recorded.clone(),
            }))
        })
    };
    let mut opts = RunOptions::native(super::threads(flags.threads), factory);
    opts.deadline = Some(std::time::Instant::now() + flags.trace_time);
    let mut host = super::fs_host::ReadOnlyHost {
        argv: flags.trace_args.clone(),
    };
    match crate::exec::run_main(&c.program, &mut host, &opts) {
        Ok(()) => {}
        Err(e) if *e.kind == crate::exec::RunErrorKind::TimeLimit => errln!(
            "note: the trace run of `main` stopped after {:.1} s (--trace-time); kernels it did not reach will be interpreted",
            flags.trace_time.as_secs_f64()
        ),
        Err(e) => errln!(
            "warning: the trace run of `main` stopped at an error ({}); kernels it did not reach will be interpreted",
            e.message()
        ),
    }
    let recorded = recorded.take();
    let kernels: Vec<crate::codegen::object::AotKernel<'_>> = recorded
        .iter()
        .map(|(key, graph, node)| crate::codegen::object::AotKernel {
            key,
            graph,
            node: *node,
        })
        .collect();
    let image = Image {
        path: path.display().to_string(),
        source: c.sources.text(crate::base::FileId(0)).to_string(),
        portable_math: flags.portable_math,
    };
    let entry = if flags.mpi_ranks {
        "flow_aot_mpi_main"
    } else {
        "flow_aot_main"
    };
    let object = match crate::codegen::object::executable_object(&kernels, &image.encode(), entry) {
        Ok(o) => o,
        Err(e) => {
            errln!("error: cannot compile `{}`: {e}", path.display());
            return 1;
        }
    };
    // A runtime library built with MPI refers to the MPI library even where the executable
    // never reaches it: link it then, `--mpi` or not.
    match link(&object, &output, flags.mpi_ranks || cfg!(feature = "mpi")) {
        Ok(()) => {
            errln!(
                "built `{}`: {} kernel(s) compiled ahead of time{}",
                output.display(),
                kernels.len(),
                if flags.mpi_ranks {
                    "; runs under mpirun"
                } else {
                    ""
                }
            );
            0
        }
        Err(msg) => {
            errln!("error: cannot link `{}`: {msg}", output.display());
            1
        }
    }
}

/// The static runtime library: `FLOW_RUNTIME_LIB` when set, else the most recently built of
/// - `libflowc.a` beside this executable (where `cargo build -p flowc` puts it),
/// - `../lib/flowc/libflowc.a` from this executable's folder (where `install.sh` puts it:
///   `PREFIX/bin/flowc` beside `PREFIX/lib/flowc/libflowc.a`),
/// - `deps/libflowc-*.a` under this executable's folder: cargo's build tree, where
///   `cargo test` and `cargo run` build the library without copying it beside flowc.
///
/// The newest wins so that a library left beside flowc by an older `cargo build` never
/// shadows the one built with this executable.
fn runtime_library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("FLOW_RUNTIME_LIB") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "FLOW_RUNTIME_LIB names `{}`, which is not a file",
                p.display()
            ))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate flowc: {e}"))?;
    let dir = exe.parent().ok_or("cannot locate flowc's directory")?;
    let beside = dir.join("libflowc.a");
    let installed = dir.join("../lib/flowc/libflowc.a");
    let in_build_tree = std::fs::read_dir(dir.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with("libflowc-") && n.ends_with(".a"))
        });
    [beside.clone(), installed.clone()]
        .into_iter()
        .chain(in_build_tree)
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .filter(|(_, p)| p.is_file())
        .max()
        .map(|(_, p)| p)
        .ok_or_else(|| {
            format!(
                "the Flow runtime library is missing: looked for `{}` and `{}` (install flowc with `./install.sh PREFIX`, or build it with `cargo build -p flowc`); or set FLOW_RUNTIME_LIB to its path",
                beside.display(),
                installed.display()
            )
        })
}

/// The linker flags of the MPI library, as Open MPI's compiler wrapper gives them
/// (`mpicc --showme:link`, e.g. `-L/usr/lib/x86_64-linux-gnu/openmpi/lib -lmpi`).
fn mpi_link_flags() -> Result<Vec<String>, String> {
    let out = std::process::Command::new("mpicc")
        .arg("--showme:link")
        .output()
        .map_err(|e| {
            format!("cannot run `mpicc --showme:link` for the MPI library's link flags: {e} (install Open MPI: scripts/install-mpi.sh)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "`mpicc --showme:link` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Links `object` with the runtime library into the executable `output`, with the C
/// compiler of `CC` (default `cc`); with `mpi`, also with the MPI library.
fn link(object: &[u8], output: &Path, with_mpi_lib: bool) -> Result<(), String> {
    let lib = runtime_library()?;
    let mpi_flags = if with_mpi_lib {
        mpi_link_flags()?
    } else {
        Vec::new()
    };
    let cc = std::env::var("CC").unwrap_or_default();
    let mut words = cc.split_whitespace();
    let program = words.next().unwrap_or("cc").to_string();
    let dir = std::env::temp_dir().join(format!(
        "flowc-build-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let obj = dir.join("program.o");
    let res = (|| {
        std::fs::write(&obj, object)
            .map_err(|e| format!("cannot write `{}`: {e}", obj.display()))?;
        let mut cmd = std::process::Command::new(&program);
        cmd.args(words)
            .arg(&obj)
            .arg(&lib)
            .arg("-o")
            .arg(output)
            .args(["-Wl,--gc-sections", "-Wl,--strip-debug"])
            .args(&mpi_flags)
            .args([
                "-lpthread",
                "-ldl",
                "-lm",
                "-lrt",
                "-lutil",
                "-lgcc_s",
                "-lc",
            ]);
        let out = cmd.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "the C compiler `{program}` was not found: flowc build links with the system C compiler (install one, e.g. `apt install gcc`, or set CC to its path)"
                )
            } else {
                format!("cannot run the C compiler `{program}`: {e}")
            }
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(())
        } else if stderr.contains("flow_aot_mpi_main") {
            Err(format!(
                "the runtime library `{}` was built without MPI: build it with `cargo build --features mpi` (or name another with FLOW_RUNTIME_LIB)",
                lib.display()
            ))
        } else {
            Err(format!(
                "`{program}` failed ({}):\n{}",
                out.status,
                stderr.trim_end()
            ))
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    res
}

/// The entry point of an executable made by `flowc build`, called by the `main` that
/// `codegen::object` writes: runs the program in `image` with the kernels of `table`.
///
/// Options before the program's arguments: `--threads N` (default: every core),
/// `--portable-math` (also `FLOW_PORTABLE_MATH=1`, and always when built with it) and
/// `--checkpoint DIR` (stage checkpoints, as `flowc run --checkpoint DIR`: the same file,
/// keyed by the embedded source and the program's arguments, so a run of `flowc run` and
/// one of the executable resume each other's); `--` ends them. Everything else is the
/// program's `args()`.
///
/// # Safety
/// `argv` holds `argc` NUL-terminated strings; `table` holds `n` entries whose keys are
/// valid UTF-8 of their length and whose kernels were compiled for those keys; `image`
/// holds `image_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_aot_main(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    table: *const AotKernel,
    n: usize,
    image: *const u8,
    image_len: usize,
) -> std::ffi::c_int {
    // SAFETY: the caller's contract is this function's.
    unsafe { aot_main(argc, argv, table, n, image, image_len, false) }
}

/// The entry point of an executable made by `flowc build --mpi`: [`flow_aot_main`], except
/// that under `mpirun` the process is one rank of an MPI job, as `flowc run` is (rank 0
/// runs the program and does all I/O; the others evaluate its dispatches alongside).
/// Started without `mpirun`, it runs as one process. A separate symbol, so that an
/// executable built without `--mpi` never reaches MPI and links without its library.
///
/// # Safety
/// As [`flow_aot_main`].
#[cfg(feature = "mpi")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flow_aot_mpi_main(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    table: *const AotKernel,
    n: usize,
    image: *const u8,
    image_len: usize,
) -> std::ffi::c_int {
    // SAFETY: the caller's contract is this function's.
    unsafe { aot_main(argc, argv, table, n, image, image_len, true) }
}

/// [`flow_aot_main`] and [`flow_aot_mpi_main`] (`mpi`).
///
/// # Safety
/// As [`flow_aot_main`].
unsafe fn aot_main(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    table: *const AotKernel,
    n: usize,
    image: *const u8,
    image_len: usize,
    mpi_ranks: bool,
) -> std::ffi::c_int {
    // SAFETY: the caller's contract.
    let (args, entries, image) = unsafe {
        let args: Vec<String> = (0..argc.max(0) as usize)
            .map(|k| {
                std::ffi::CStr::from_ptr(*argv.add(k))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let entries: Vec<(String, crate::native::KernelFn)> = (0..n)
            .map(|k| {
                let e = &*table.add(k);
                let key = std::slice::from_raw_parts(e.key, e.key_len);
                (String::from_utf8_lossy(key).into_owned(), e.kernel)
            })
            .collect();
        (args, entries, std::slice::from_raw_parts(image, image_len))
    };
    // On a thread with the stack the coordinator needs (deep `proc` recursion, long call
    // chains); a panic there is caught by the join.
    let outcome = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("flow".into())
            .stack_size(crate::exec::STACK_BYTES)
            .spawn_scoped(s, move || run_image(args, entries, image, mpi_ranks))
            .map(|worker| worker.join())
    });
    match outcome {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => {
            errln!("error: internal error (a panic) in the Flow runtime");
            101
        }
        Err(e) => {
            errln!("error: cannot start the program's thread: {e}");
            2
        }
    }
}

/// Runs an executable's program: see [`flow_aot_main`].
fn run_image(
    args: Vec<String>,
    entries: Vec<(String, crate::native::KernelFn)>,
    image: &[u8],
    mpi_ranks: bool,
) -> i32 {
    let name = args.first().cloned().unwrap_or_else(|| "program".into());
    let mut rest = args.into_iter().skip(1).peekable();
    let mut threads = None;
    let mut portable_math = false;
    let mut flags = super::PassFlags::default();
    let is_option = |a: &String| {
        ["--threads", "--checkpoint"]
            .iter()
            .any(|o| a == o || a.strip_prefix(o).is_some_and(|v| v.starts_with('=')))
            || a == "--portable-math"
            || a == "--"
    };
    while let Some(arg) = rest.next_if(is_option) {
        if arg == "--" {
            break;
        }
        if arg == "--portable-math" {
            portable_math = true;
            continue;
        }
        let (option, value) = match arg.split_once('=') {
            Some((o, v)) => (o.to_string(), Some(v.to_string())),
            None => (arg, rest.next()),
        };
        if option == "--checkpoint" {
            match value {
                Some(dir) if !dir.is_empty() => flags.checkpoint = Some(PathBuf::from(dir)),
                _ => {
                    errln!("error: {name}: --checkpoint needs a directory");
                    return 2;
                }
            }
            continue;
        }
        match value.as_deref().map(super::parse_threads) {
            Some(Ok(t)) => threads = Some(t),
            Some(Err(msg)) => {
                errln!("error: {name}: --threads: {msg}");
                return 2;
            }
            None => {
                errln!("error: {name}: --threads needs a number of threads");
                return 2;
            }
        }
    }
    let argv: Vec<String> = rest.collect();
    let Some(image) = Image::decode(image) else {
        errln!("error: {name}: the program image is damaged");
        return 1;
    };
    super::select_math(portable_math || image.portable_math);
    super::apply_test_environment();
    let cfg = stderr_config();
    let c = match super::compile_sources(&[(image.path.clone(), image.source)]) {
        Ok(c) => c,
        Err(f) => {
            err!("{}", f.render(cfg));
            return 1;
        }
    };
    let (hits, misses) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
    let kernels = entries.len();
    let factory = {
        let (hits, misses) = (hits.clone(), misses.clone());
        Rc::new(move || -> Result<Box<dyn Kernels>, NativeError> {
            Ok(Box::new(Counted {
                table: Table::new(entries.clone()),
                hits: hits.clone(),
                misses: misses.clone(),
            }))
        })
    };
    let mut opts = RunOptions::native(super::threads(threads), factory);
    let observed = match RuntimeFlags::default().apply(&mut opts) {
        Ok(o) => o,
        Err(msg) => {
            errln!("error: {msg}");
            return 2;
        }
    };
    #[cfg(feature = "mpi")]
    if mpi_ranks && super::mpi_run::under_mpirun() {
        let worker = opts.clone();
        return super::mpi_run::run_job(
            false,
            || Ok(worker),
            |spread| {
                opts.spread = Some(spread);
                run_compiled(&c, opts, &observed, argv, &flags, cfg)
            },
        );
    }
    let _ = mpi_ranks;
    let status = run_compiled(&c, opts, &observed, argv, &flags, cfg);
    if std::env::var_os("FLOW_AOT_STATS").is_some_and(|v| !v.is_empty() && v != "0") {
        errln!(
            "aot: {kernels} kernel(s) compiled ahead of time; {} launch(es) used them, {} node(s) ran on the interpreter",
            hits.get(),
            misses.get()
        );
    }
    status
}

/// The kernel table, counting what it finds and what it does not.
struct Counted {
    table: Table,
    hits: Rc<Cell<usize>>,
    misses: Rc<Cell<usize>>,
}

impl Kernels for Counted {
    fn kernel(&mut self, g: &Graph, id: NodeId, hooks: &Hooks) -> KernelLookup {
        let k = self.table.kernel(g, id, hooks)?;
        let counter = if k.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.set(counter.get() + 1);
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::Image;

    #[test]
    fn an_image_round_trips_and_damage_is_detected() {
        let image = Image {
            path: "examples/mlp.flow".into(),
            source: "main { print(1) }\n".into(),
            portable_math: true,
        };
        let bytes = image.encode();
        assert_eq!(Image::decode(&bytes), Some(image));
        for cut in 0..bytes.len() {
            assert_eq!(Image::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Image::decode(&longer), None);
        let mut bad = bytes;
        bad[0] = b'X';
        assert_eq!(Image::decode(&bad), None);
    }
}
