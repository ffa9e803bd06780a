//! Kernels ahead of time, for `flowc build`: one relocatable object file holding
//!
//! - every kernel, compiled by the same [`Emitter`] as the JIT's (`flow_kernel_N`);
//! - `flow_aot_kernels`, a table of [`flow_runtime::abi::AotKernel`] entries — each kernel's
//!   structure key and address — from which the executor's [`crate::native::Table`] is
//!   built at run time;
//! - `flow_aot_image`, the program image (its path and source text, see `driver/aot.rs`);
//! - `main(argc, argv)`, which calls the runtime's `flow_aot_main` (`flow_aot_mpi_main` for
//!   `flowc build --mpi`) with the table and the image.
//!
//! The linker resolves the math functions kernels call (`flow_expf`, …) and `flow_aot_main`
//! against the static runtime library.

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{default_libcall_names, DataDescription, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};

use super::{cl_err, host_isa, Emitter};
use crate::mir::ir::{Graph, NodeId};
use crate::native::NativeError;

/// One kernel to compile: its structure key, and a graph with the node it is the kernel of.
pub struct AotKernel<'a> {
    pub key: &'a str,
    pub graph: &'a Graph,
    pub node: NodeId,
}

/// The bytes of an ELF object file with `kernels`, their table, `image` and a `main` that
/// calls the runtime's `entry_point` (`flow_aot_main`, or `flow_aot_mpi_main` for an executable
/// that runs under `mpirun`).
pub fn executable_object(
    kernels: &[AotKernel<'_>],
    image: &[u8],
    entry_point: &str,
) -> Result<Vec<u8>, NativeError> {
    let builder = ObjectBuilder::new(host_isa(true)?, "flow-program", default_libcall_names())
        .map_err(cl_err("cranelift-object"))?;
    let mut module = ObjectModule::new(builder);
    let mut emitter = Emitter::new(&mut module)?;
    let ptr = module.target_config().pointer_type();
    let ptr_bytes = ptr.bytes() as usize;

    let mut table = DataDescription::new();
    let entry = 3 * ptr_bytes;
    let mut contents = vec![0u8; kernels.len() * entry];
    for (i, k) in kernels.iter().enumerate() {
        let fid = emitter.define(
            &mut module,
            k.graph,
            k.node,
            &format!("flow_kernel_{i}"),
            Linkage::Local,
        )?;
        let key = module
            .declare_data(
                &format!("flow_kernel_key_{i}"),
                Linkage::Local,
                false,
                false,
            )
            .map_err(cl_err("declaring a kernel key"))?;
        let mut text = DataDescription::new();
        text.define(k.key.as_bytes().to_vec().into_boxed_slice());
        module
            .define_data(key, &text)
            .map_err(cl_err("defining a kernel key"))?;
        let at = i * entry;
        let gv = module.declare_data_in_data(key, &mut table);
        table.write_data_addr((at) as u32, gv, 0);
        contents[at + ptr_bytes..at + 2 * ptr_bytes]
            .copy_from_slice(&(k.key.len() as u64).to_le_bytes()[..ptr_bytes]);
        let fref = module.declare_func_in_data(fid, &mut table);
        table.write_function_addr((at + 2 * ptr_bytes) as u32, fref);
    }
    table.define(contents.into_boxed_slice());
    // Writable: it holds relocated addresses, which a position-independent executable fills
    // in at load time.
    let table_id = module
        .declare_data("flow_aot_kernels", Linkage::Local, true, false)
        .map_err(cl_err("declaring the kernel table"))?;
    module
        .define_data(table_id, &table)
        .map_err(cl_err("defining the kernel table"))?;
    let image_id = module
        .declare_data("flow_aot_image", Linkage::Local, false, false)
        .map_err(cl_err("declaring the program image"))?;
    let mut desc = DataDescription::new();
    desc.define(image.to_vec().into_boxed_slice());
    module
        .define_data(image_id, &desc)
        .map_err(cl_err("defining the program image"))?;

    // int flow_aot_main(int argc, char **argv, const AotKernel *table, size_t n,
    //                   const uint8_t *image, size_t image_len);
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(types::I32));
    for t in [ptr, ptr, ptr, ptr, ptr] {
        sig.params.push(AbiParam::new(t));
    }
    sig.returns.push(AbiParam::new(types::I32));
    let entry_fn = module
        .declare_function(entry_point, Linkage::Import, &sig)
        .map_err(cl_err("declaring the runtime's entry point"))?;
    // int main(int argc, char **argv)
    let mut main_sig = module.make_signature();
    main_sig.params.push(AbiParam::new(types::I32));
    main_sig.params.push(AbiParam::new(ptr));
    main_sig.returns.push(AbiParam::new(types::I32));
    let main_id = module
        .declare_function("main", Linkage::Export, &main_sig)
        .map_err(cl_err("declaring main"))?;
    let mut ctx = module.make_context();
    ctx.func.signature = main_sig;
    ctx.func.name = UserFuncName::user(0, main_id.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let (argc, argv) = (b.block_params(block)[0], b.block_params(block)[1]);
        let callee = module.declare_func_in_func(entry_fn, b.func);
        let table_gv = module.declare_data_in_func(table_id, b.func);
        let image_gv = module.declare_data_in_func(image_id, b.func);
        let table_addr = b.ins().symbol_value(ptr, table_gv);
        let image_addr = b.ins().symbol_value(ptr, image_gv);
        let n = b.ins().iconst(ptr, kernels.len() as i64);
        let len = b.ins().iconst(ptr, image.len() as i64);
        let call = b
            .ins()
            .call(callee, &[argc, argv, table_addr, n, image_addr, len]);
        let status = b.inst_results(call)[0];
        b.ins().return_(&[status]);
        b.seal_all_blocks();
        b.finalize(module.target_config());
    }
    module
        .define_function(main_id, &mut ctx)
        .map_err(|e| NativeError::CompilerBug {
            what: "Cranelift rejected main".into(),
            finding: format!("{e:?}"),
        })?;
    module
        .finish()
        .emit()
        .map_err(cl_err("writing the object file"))
}
