//! The code generator: every `Map` and `Reduce` node of an optimized graph becomes one
//! Cranelift function (`kernel/`: the loop nest in `mod.rs`, operators in `ops.rs`, the
//! vector plan in `vector.rs`). The only module that uses Cranelift.
//!
//! The same [`Emitter`] writes kernels into two kinds of Cranelift module: the JIT's
//! ([`Jit`], a [`Kernels`] source that compiles each structure once, at its first dispatch)
//! and an object file's (`object.rs`, for `flowc build`). The executor that runs kernels over
//! shards is `crate::native`, which knows nothing of Cranelift.

pub mod kernel;
pub mod object;

use std::collections::HashMap;
use std::time::Instant;

use cranelift_codegen::ir::{types, AbiParam, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use flow_runtime::profile::Hooks;
use flow_runtime::DType;

use crate::mir::ir::{Graph, NodeId};
use crate::native::{
    describe, structure_key, Kernel, KernelFn, KernelLookup, Kernels, Native, NativeError,
};
use kernel::{Imports, CALLED};

fn cl_err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> NativeError + '_ {
    move |e| NativeError::Target {
        what: what.to_string(),
        cause: e.to_string(),
    }
}

/// The native executor on `threads` threads with kernels compiled by the JIT.
pub fn native(threads: usize) -> Result<Native, NativeError> {
    Native::new(Box::new(Jit::new()?), threads)
}

/// The instruction set of this machine, for the JIT (`pic = false`) or for an object file
/// linked into a position-independent executable (`pic = true`).
fn host_isa(pic: bool) -> Result<OwnedTargetIsa, NativeError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v).map_err(|e| NativeError::Target {
            what: format!("cranelift setting {k}"),
            cause: e.to_string(),
        })
    };
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", if pic { "true" } else { "false" })?;
    set(&mut flags, "opt_level", "speed")?;
    cranelift_native::builder()
        .map_err(cl_err("this machine is not supported by Cranelift"))?
        .finish(settings::Flags::new(flags))
        .map_err(cl_err("cranelift"))
}

/// The runtime's math symbols, in the order of [`CALLED`], `f32` then `f64`: kernels call
/// the same Rust functions the interpreter uses, so results match bit for bit.
fn math_symbols() -> Vec<(String, DType, usize)> {
    let mut out = Vec::new();
    for d in [DType::F32, DType::F64] {
        for (name, arity) in CALLED {
            let base = if name == "rem" { "fmod" } else { name };
            let symbol = if d == DType::F32 {
                format!("flow_{base}f")
            } else {
                format!("flow_{base}")
            };
            out.push((symbol, d, arity));
        }
    }
    out
}

/// Writes kernels into a Cranelift module: the contexts and the declared math imports.
struct Emitter {
    ctx: Context,
    fctx: FunctionBuilderContext,
    math: Vec<FuncId>,
}

impl Emitter {
    /// Declares the runtime's math functions in `module` (as imports, resolved by the JIT's
    /// symbol table or by the linker).
    fn new<M: Module>(module: &mut M) -> Result<Emitter, NativeError> {
        let mut math = Vec::new();
        for (name, d, arity) in math_symbols() {
            let mut sig = module.make_signature();
            let t = kernel::clif_type(d);
            for _ in 0..arity {
                sig.params.push(AbiParam::new(t));
            }
            sig.returns.push(AbiParam::new(t));
            let id = module
                .declare_function(&name, Linkage::Import, &sig)
                .map_err(cl_err(&format!("declaring {name}")))?;
            math.push(id);
        }
        // Last, the span functions (kernel/span.rs), no result: `exp` over `(ptr, n: i64)`,
        // the windowed dot product over `(out, x, w, n: i64, k: i64, order: i64, total: i64)`, and the
        // row operation over `(out, x, d, rows, n, x_stride, out_stride, op: i64)`, the
        // lane fold over `(out, x, rows, x_stride, lanes, lane_stride, m, fold: i64)`, and the
        // moments fold over `(o0, o1, o2, o3, x, rows, x_stride, lanes, lane_stride, m,
        // fields, kinds: i64, c0, c1, c2, c3: f64)`.
        let ptr = module.target_config().pointer_type();
        for (name, ptrs, ints, floats) in [
            (kernel::EXP_SPAN_SYMBOL, 1, 1, 0),
            (kernel::WINDOW_DOT_SYMBOL, 3, 4, 0),
            (kernel::ROW_BINARY_SYMBOL, 3, 5, 0),
            (kernel::LANE_FOLD_SYMBOL, 2, 6, 0),
            (kernel::MOMENTS_FOLD_SYMBOL, 5, 7, 4),
        ] {
            let mut sig = module.make_signature();
            sig.params.extend((0..ptrs).map(|_| AbiParam::new(ptr)));
            sig.params
                .extend((0..ints).map(|_| AbiParam::new(types::I64)));
            sig.params
                .extend((0..floats).map(|_| AbiParam::new(types::F64)));
            let id = module
                .declare_function(name, Linkage::Import, &sig)
                .map_err(cl_err(&format!("declaring {name}")))?;
            math.push(id);
        }
        Ok(Emitter {
            ctx: module.make_context(),
            fctx: FunctionBuilderContext::new(),
            math,
        })
    }

    /// Defines the kernel of node `id` as function `name` of `module`.
    fn define<M: Module>(
        &mut self,
        module: &mut M,
        g: &Graph,
        id: NodeId,
        name: &str,
        linkage: Linkage,
    ) -> Result<FuncId, NativeError> {
        let ptr = module.target_config().pointer_type();
        module.clear_context(&mut self.ctx);
        kernel::kernel_signature(&mut self.ctx.func.signature, ptr);
        let fid = module
            .declare_function(name, linkage, &self.ctx.func.signature)
            .map_err(cl_err("declaring a kernel"))?;
        self.ctx.func.name = UserFuncName::user(0, fid.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let funcs = self
                .math
                .iter()
                .map(|m| module.declare_func_in_func(*m, b.func))
                .collect();
            kernel::generate(g, &g.nodes[id], &mut b, Imports { funcs }, ptr);
            b.seal_all_blocks();
            b.finalize(module.target_config());
        }
        module
            .define_function(fid, &mut self.ctx)
            .map_err(|e| NativeError::CompilerBug {
                what: format!("Cranelift rejected kernel {id}"),
                finding: format!("{e:?}"),
            })?;
        module.clear_context(&mut self.ctx);
        Ok(fid)
    }
}

/// The JIT: a Cranelift module and the cache of compiled kernels, by structure.
pub struct Jit {
    module: JITModule,
    emitter: Emitter,
    /// Compiled kernels by structure ([`structure_key`]).
    cache: HashMap<String, Kernel>,
    compiled: usize,
    compile_time: std::time::Duration,
}

impl Jit {
    pub fn new() -> Result<Jit, NativeError> {
        let mut builder = JITBuilder::with_isa(host_isa(false)?, default_libcall_names());
        let table: HashMap<&str, *const u8> =
            flow_runtime::abi::builtin_symbols().into_iter().collect();
        let names = math_symbols().into_iter().map(|(name, _, _)| name);
        let spans = [
            kernel::EXP_SPAN_SYMBOL,
            kernel::WINDOW_DOT_SYMBOL,
            kernel::ROW_BINARY_SYMBOL,
            kernel::LANE_FOLD_SYMBOL,
            kernel::MOMENTS_FOLD_SYMBOL,
        ]
        .map(String::from);
        for name in names.chain(spans) {
            let ptr = *table
                .get(name.as_str())
                .expect("the runtime exports every math built-in");
            builder.symbol(name, ptr);
        }
        let mut module = JITModule::new(builder);
        let emitter = Emitter::new(&mut module)?;
        Ok(Jit {
            module,
            emitter,
            cache: HashMap::new(),
            compiled: 0,
            compile_time: std::time::Duration::ZERO,
        })
    }
}

impl Kernels for Jit {
    /// The compiled kernel of `node`, from the cache when a kernel of the same structure (same
    /// expressions, projections and tensor types) was compiled before.
    fn kernel(&mut self, g: &Graph, id: NodeId, hooks: &Hooks) -> KernelLookup {
        let key = structure_key(g, &g.nodes[id]);
        if let Some(k) = self.cache.get(&key) {
            return Ok(Some(*k));
        }
        let start = Instant::now();
        let name = format!("k{}", self.compiled);
        let fid = self
            .emitter
            .define(&mut self.module, g, id, &name, Linkage::Local)?;
        self.module
            .finalize_definitions()
            .map_err(|e| NativeError::CompilerBug {
                what: format!("linking kernel {id}"),
                finding: e.to_string(),
            })?;
        let code = self.module.get_finalized_function(fid);
        // SAFETY: the function was generated with exactly this signature.
        let f: KernelFn = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
        let number = self.compiled;
        self.compiled += 1;
        self.compile_time += start.elapsed();
        if let Some(p) = &hooks.profiler {
            p.span(
                format!("compile k{number}"),
                "compile",
                start,
                Instant::now(),
                0,
                vec![("op", describe(id, &g.nodes[id]))],
            );
        }
        let k = Kernel { f, number };
        self.cache.insert(key, k);
        Ok(Some(k))
    }

    fn compile_time(&self) -> std::time::Duration {
        self.compile_time
    }

    fn compiled(&self) -> usize {
        self.compiled
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod span_tests;
