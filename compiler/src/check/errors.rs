//! The checker's wording table: one constructor per kind of error, taking facts and spans.
//! Every message a user sees from the checker is written here.

use crate::base::{Code, Diagnostic, Span};
use crate::hir::{self, Dim, Ty};

const OP_ENV_NOTE: &str = "operations (`fn`, `op`, `monoid`) are hermetic and idempotent: the \
compiler may fuse, shard, reorder, retry and recompute them, so they may not do I/O, mutate \
state, loop or call the coordinator; do that in `main` or a `proc`";

pub fn io_in_op(what: &str, ctx: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::IoInOperation,
        format!("`{what}` does I/O, which the operation environment forbids (inside {ctx})"),
        span,
    )
    .with_label_text("I/O is only allowed in the coordinator")
    .with_note(OP_ENV_NOTE)
}

pub fn var_in_op(name: &str, ctx: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::MutationInOperation,
        format!(
            "mutable `var {name}` inside {ctx}: the operation environment forbids mutable state"
        ),
        span,
    )
    .with_label_text("use `let` for an immutable binding")
    .with_note(OP_ENV_NOTE)
}

pub fn assign_in_op(name: &str, ctx: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::MutationInOperation,
        format!(
            "assignment to `{name}` inside {ctx}: the operation environment forbids mutable state"
        ),
        span,
    )
    .with_note(OP_ENV_NOTE)
}

pub fn loop_in_op(kw: &str, ctx: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::LoopInOperation,
        format!("`{kw}` loop inside {ctx}: the operation environment forbids loops"),
        span,
    )
    .with_label_text("express this with a comprehension or a reduction")
    .with_note(OP_ENV_NOTE)
}

pub fn proc_in_op(callee: &str, ctx: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::ProcInOperation,
        format!("{ctx} calls proc `{callee}`, which runs in the coordinator environment"),
        span,
    )
    .with_label_text("procs may only be called from `main`, a `proc` or a `test`")
    .with_note(OP_ENV_NOTE)
}

pub fn recursion(cycle: &[String], span: Span) -> Diagnostic {
    let msg = if cycle.len() == 1 {
        format!("`{}` is recursive: it calls itself", cycle[0])
    } else {
        format!("recursion among operations: {}", cycle.join(" -> "))
    };
    Diagnostic::error(Code::Recursion, msg, span)
        .with_label_text("recursive call")
        .with_note("recursion is forbidden in the operation environment: every op must unfold into a finite graph; iterate in the coordinator instead")
}

pub fn unknown_name(name: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::UnknownName,
        format!("cannot find `{name}` in this scope"),
        span,
    )
    .with_label_text("not defined")
}

pub fn duplicate(what: &str, name: &str, span: Span, first: Span) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateDefinition,
        format!("{what} `{name}` is defined twice"),
        span,
    )
    .with_label_text("second definition")
    .with_label(first, "first definition")
}

pub fn arity(name: &str, expected: usize, found: usize, span: Span) -> Diagnostic {
    let s = if expected == 1 { "" } else { "s" };
    Diagnostic::error(
        Code::WrongArity,
        format!("`{name}` takes {expected} argument{s} but {found} were given"),
        span,
    )
}

pub fn type_mismatch(expected: &Ty, found: &Ty, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::TypeMismatch,
        format!("expected `{expected}`, found `{found}`"),
        span,
    )
    .with_label_text(format!("this is `{found}`"))
}

pub fn type_error(msg: impl Into<String>, span: Span) -> Diagnostic {
    Diagnostic::error(Code::TypeMismatch, msg, span)
}

pub fn shape_mismatch(a: &Ty, b: &Ty, span_a: Span, span_b: Span) -> Diagnostic {
    Diagnostic::error(
        Code::ShapeMismatch,
        format!("shape mismatch: `{a}` and `{b}`"),
        span_b,
    )
    .with_label_text(format!("this is `{b}`"))
    .with_label(span_a, format!("this is `{a}`"))
}

pub fn arg_shape_mismatch(param: &Ty, arg: &Ty, callee: &str, span: Span, def: Span) -> Diagnostic {
    Diagnostic::error(
        Code::ShapeMismatch,
        format!("shape mismatch in call to `{callee}`: expected `{param}`, found `{arg}`"),
        span,
    )
    .with_label_text(format!("this argument is `{arg}`"))
    .with_label(def, format!("`{callee}` is declared here"))
}

pub fn rank_mismatch(ty: &Ty, n: usize, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::RankMismatch,
        format!(
            "`{ty}` has {} dimension(s) but is indexed with {n}",
            ty.dims().len()
        ),
        span,
    )
}

pub fn non_affine(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::NonAffineIndex,
        format!("index `{what}` is not an affine function of the comprehension indices"),
        span,
    )
    .with_label_text("not affine")
    .with_note("an index read past the edge (`pad`, `clamp_edge`) must be `c0 + c1*i + c2*j + ...` with integer constants or shape variables as the `c`s; a gather at a computed index (`x[idx[i]]`) reads a plain tensor")
}

/// An index that is not an integer: neither affine nor a gather coordinate.
pub fn non_integer_index(what: &str, ty: &Ty, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::NonAffineIndex,
        format!("index `{what}` has type `{ty}`: an index is an integer (an affine function of the comprehension indices, or any `i64`/`i32` value for a gather)"),
        span,
    )
    .with_label_text(format!("`{ty}`, not an integer"))
    .with_note("convert it with `as i64`")
}

/// A computed index outside any comprehension or reduction, where no index is in scope.
pub fn non_constant_index(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::NonAffineIndex,
        format!("index `{what}` is not a constant: outside a comprehension or reduction, an index is an integer constant or an affine expression of shape variables"),
        span,
    )
    .with_label_text("not a constant")
    .with_note("a read past the edge (`pad`, `clamp_edge`) needs a constant index here; a plain tensor may be read at any integer (`x[k]`, a gather)")
}

pub fn index_disagree(name: &str, a: &Dim, b: &Dim, span_a: Span, span_b: Span) -> Diagnostic {
    Diagnostic::error(
        Code::IndexDisagree,
        format!("the uses of index `{name}` disagree about its range: `{a}` here and `{b}` there"),
        span_b,
    )
    .with_label_text(format!("`{name}` ranges over `{b}` here"))
    .with_label(span_a, format!("`{name}` ranges over `{a}` here"))
    .with_note("give the index an explicit bound (`let y[i < 4] = …`) or make the uses agree")
}

pub fn index_unbound(name: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::IndexUnbound,
        format!("cannot infer the range of index `{name}`"),
        span,
    )
    .with_label_text("no use of this index determines its range")
    .with_note(format!(
        "use `{name}` directly as an index of a tensor, or give it a bound: `[{name} < 4]`"
    ))
}

pub fn out_of_bounds(tensor_ty: &Ty, axis: usize, lo: &Dim, hi: &Dim, span: Span) -> Diagnostic {
    let dim = &tensor_ty.dims()[axis];
    Diagnostic::error(
        Code::OutOfBounds,
        format!(
            "read outside the tensor: axis {axis} of `{tensor_ty}` has indices 0..{dim}, but this index ranges over {lo}..={hi}"
        ),
        span,
    )
    .with_label_text("may read past the edge")
    .with_note("to read past an edge on purpose, wrap the tensor: `pad(x, 0.0)[i - 1]` or `clamp_edge(x)[i - 1]`")
}

pub fn bad_monoid(msg: impl Into<String>, span: Span) -> Diagnostic {
    Diagnostic::error(Code::BadMonoid, msg, span)
}

pub fn placeholder(span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::MisplacedPlaceholder,
        "`_` may only stand for the piped argument of a call in an arrow (`x |> f(_, w)`)",
        span,
    )
}

pub fn not_callable(name: &str, what: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::NotCallable,
        format!("`{name}` is {what}, not a function"),
        span,
    )
}

pub fn int_literal_range(v: i64, d: hir::DType, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::BadLiteral,
        format!("integer literal `{v}` does not fit in `{d}`"),
        span,
    )
    .with_label_text(format!("out of the range of `{d}`"))
}

/// `-a` of an unsigned type: a negative literal is `bad-literal`, any other negation a
/// `type-mismatch` (unsigned integers have no negation; `0 - a` wraps).
pub fn unsigned_negation(a: &hir::ExprKind, d: hir::DType, span: Span) -> Diagnostic {
    if let hir::ExprKind::Lit(s) = a {
        return Diagnostic::error(
            Code::BadLiteral,
            format!(
                "integer literal `-{}` does not fit in `{d}`",
                flow_runtime::format::format_scalar(s)
            ),
            span,
        )
        .with_label_text(format!("`{d}` has no negative values"));
    }
    type_error(
        format!("cannot negate a value of the unsigned type `{d}` (write `0 - x` to wrap)"),
        span,
    )
}

pub fn builtin_redefined(what: &str, name: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateDefinition,
        format!("{what} `{name}` is defined twice: `{name}` is a built-in"),
        span,
    )
    .with_label_text("this definition would hide the built-in")
    .with_note("built-in names cannot be redefined; choose another name")
}

pub fn proc_in_point(callee: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::ProcInOperation,
        format!("a comprehension or reduction calls proc `{callee}`, which runs in the coordinator environment"),
        span,
    )
    .with_label_text("the body of a comprehension or reduction is an operation")
    .with_note("call the proc before the comprehension (`let v = q(1.0);`) and use its result inside")
    .with_note(OP_ENV_NOTE)
}

pub fn coordinator_in_point(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::IoInOperation,
        format!("`{what}` belongs to the coordinator and cannot run inside a comprehension or reduction"),
        span,
    )
    .with_label_text("the body of a comprehension or reduction is an operation")
    .with_note(format!("call `{what}` before the comprehension (`let v = {what}(…);`) and use its result inside"))
    .with_note(OP_ENV_NOTE)
}

pub fn bad_bench(measures: usize, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::BadBench,
        format!("a `bench` block needs exactly one top-level `measure {{ … }}` block, found {measures}"),
        span,
    )
    .with_note("`bench \"name\" { setup; measure { timed code } }`: the setup runs once, the `measure` block is timed")
}

pub fn measure_outside_bench(span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::BadBench,
        "`measure { … }` is only allowed at the top of a `bench` block",
        span,
    )
}

/// A monoid whose `zero` is not an identity: `form` (`combine(zero, a)` or `combine(a, zero)`)
/// differs from `a`. `shown` is `[zero, a, form's value]` as printed.
pub fn monoid_identity(monoid: &str, span: Span, form: &str, shown: [String; 3]) -> Diagnostic {
    let [zero, a, lhs] = shown;
    Diagnostic::error(
        Code::MonoidIdentity,
        format!("monoid `{monoid}` violates the identity law: {form} must equal a"),
        span,
    )
    .with_label_text(format!("zero = {zero}"))
    .with_note(format!("counterexample: a = {a}, but {form} = {lhs}"))
    .with_note("`zero` must leave every state unchanged when combined with it, on either side")
}

/// A monoid whose combine is not associative. `shown` is `[a, b, c, (ab)c, a(bc)]` as printed.
pub fn monoid_associativity(monoid: &str, span: Span, shown: [String; 5]) -> Diagnostic {
    let [a, b, c, l, r] = shown;
    Diagnostic::error(
        Code::MonoidAssociativity,
        format!(
            "monoid `{monoid}` is not associative: combine(combine(a, b), c) differs from \
             combine(a, combine(b, c))"
        ),
        span,
    )
    .with_label_text("this combine is not associative")
    .with_note(format!(
        "counterexample: a = {a}, b = {b}, c = {c}: combine(combine(a, b), c) = {l} but \
         combine(a, combine(b, c)) = {r}"
    ))
    .with_note(
        "reductions are split into shards and combined in a tree, so the grouping must not matter",
    )
}

/// A monoid declared commutative whose combine is not. `shown` is `[a, b, ab, ba]` as printed.
pub fn monoid_commutativity(monoid: &str, span: Span, shown: [String; 4]) -> Diagnostic {
    let [a, b, l, r] = shown;
    Diagnostic::error(
        Code::MonoidCommutativity,
        format!(
            "monoid `{monoid}` is declared commutative, but combine(a, b) differs from \
             combine(b, a)"
        ),
        span,
    )
    .with_note(format!(
        "counterexample: a = {a}, b = {b}: combine(a, b) = {l} but combine(b, a) = {r}"
    ))
    .with_note("remove `commutative;` if the order of inputs matters")
}

/// `grad` (or `value_and_grad`, `vjp`) of an `op` inside a comprehension or reduction body.
pub fn not_differentiable_in_point(which: &str, func: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::NotDifferentiable,
        format!("`{which}` of the op `{func}` inside a comprehension or reduction body"),
        span,
    )
    .with_label_text("a body computes one element at a time")
    .with_note(format!(
        "per element, `{which}` differentiates a `fn` of scalars (applied elementwise over the \
         body's indices); an op works on whole tensors: take `{which}` of it outside the body, \
         or make `{func}` a `fn`"
    ))
}

/// A monoid's `d_combine` that disagrees with central differences of its `combine`.
/// `shown` is `[a, b, the side, its field, the result's field]` (the fields empty for a
/// scalar state).
pub fn monoid_derivative(
    monoid: &str,
    span: Span,
    shown: [String; 5],
    got: f64,
    fd: f64,
) -> Diagnostic {
    let [a, b, side, k, f] = shown;
    let of = |x: String| if x.is_empty() { x } else { format!(".{x}") };
    let (k, f) = (of(k), of(f));
    Diagnostic::error(
        Code::MonoidDerivative,
        format!("the `d_combine` of monoid `{monoid}` is not the derivative of its `combine`"),
        span,
    )
    .with_note(format!(
        "at a = {a}, b = {b}: d combine(a, b){f} / d {side}{k} is {fd:.6} by central differences, but d_combine gives {got:.6}"
    ))
    .with_note("d_combine(a, b, g) must return the adjoints (da, db) of a and b given the adjoint g of combine(a, b)")
}

/// `grad` (or `value_and_grad`, `vjp`) with respect to a value that has no gradient.
pub fn not_differentiable_arg(
    which: &str,
    func: &str,
    k: usize,
    ty: &Ty,
    span: Span,
) -> Diagnostic {
    Diagnostic::error(
        Code::NotDifferentiable,
        format!(
            "`{which}` with respect to argument {k} of `{func}`, of type `{ty}`: only `f32` and `f64` values (scalars or tensors) have a gradient"
        ),
        span,
    )
}

/// `grad` of a function whose result is not a float.
pub fn not_differentiable_result(which: &str, func: &str, ty: &Ty, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::NotDifferentiable,
        format!("`{which}` of `{func}`, whose result `{ty}` is not a float"),
        span,
    )
}

/// `grad` of a function that reduces (`prim` is `reduce`) or scans (`scan`) with a user
/// monoid.
pub fn not_differentiable_monoid(
    which: &str,
    func: &str,
    monoid: &str,
    (prim, span): (&str, Span),
    at: Span,
) -> Diagnostic {
    let verb = match prim {
        "reduce" => "reduces",
        "reduce_by_index" => "builds a histogram",
        _ => "scans",
    };
    Diagnostic::error(
        Code::NotDifferentiable,
        format!("`{which}` of `{func}`, which {verb} with the monoid `{monoid}`: `{monoid}` declares no derivative"),
        span,
    )
    .with_label(at, format!("`{prim}` with `{monoid}` here"))
    .with_note(format!("declare one in `{monoid}`: `d_combine(a, b, g) = (…, …);`, the adjoints of `a` and `b` given the adjoint `g` of `combine(a, b)`; or use the built-in reductions `sum`, `prod`, `max` and `min`"))
}

/// `filter`, `partition` or a sort inside an operation.
pub fn prim_in_op(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::DynamicSizeInOperation,
        format!("`{what}` cannot run inside an operation: the coordinator computes it, as its own observation"),
        span,
    )
    .with_label_text("call it in `main` or a `proc`, and pass the result to the op")
    .with_note("an op's graph has every size fixed when it is built; `filter` and `partition` give a length known only when they run, and the sorts, scans, histograms and scatters run on the runtime's parallel primitives between graphs")
}

// ---- tensors of tuples (`check::infer::tuples`) ----

/// `p[i]` of a tuple that is not a tensor of tuples (some field is not a tensor).
pub fn index_non_tensor_tuple(ty: &Ty, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::TypeMismatch,
        format!("cannot index a value of type `{ty}`"),
        span,
    )
    .with_note("only a tensor of tuples, a tuple whose fields are all tensors of one shape, takes an index (`(f32, i64)[N]`)")
}

/// `p[i]` of a tuple of tensors whose shapes differ.
pub fn tuple_shapes_differ(ty: &Ty, a: &Ty, b: &Ty, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::ShapeMismatch,
        format!("cannot index `{ty}`: its fields have different shapes, `{a}` and `{b}`"),
        span,
    )
    .with_note("a tensor of tuples is one tensor per field, all of one shape")
}
