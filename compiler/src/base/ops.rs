//! The scalar operators and the meaning of each, on [`Scalar`] values: the one
//! implementation of scalar semantics. The checker's evaluator (monoid laws), the
//! coordinator, constant folding and the reference interpreter all evaluate with these
//! functions, and generated code must match them bit for bit. These enums are the operators
//! of every layer: the parser produces them, and the syntax tree, the HIR and the MIR
//! (`crate::mir::ir`) re-export them; `crate::hir::ops` maps the pointwise built-ins onto them.
//!
//! Operands of a binary operator always have the same type (lowering inserts casts); a call
//! whose operand types do not fit returns [`OpError::Operands`], which a verified graph never
//! produces.
//!
//! - **Integer `add`, `sub`, `mul`, `neg`, `abs`** wrap around in two's complement
//!   (`abs(MIN) == MIN`), like Rust's `wrapping_*` and Cranelift's `iadd`/`imul`.
//! - **Integer `div`** truncates toward zero. A zero divisor is [`OpError::DivByZero`], and
//!   `MIN / -1` is [`OpError::DivOverflow`]. **Integer `rem`** has the sign of the dividend; a
//!   zero divisor is [`OpError::DivByZero`], and `MIN % -1` is `0`.
//! - **`band` / `bor` / `bxor`** (`&`, `|`, `^`) and **`not` on an integer** (`!x`) are
//!   bitwise, on the two's complement bits, like Rust's `&`, `|`, `^`, `!` on integers.
//! - **`shl` / `shr`** take the shift amount modulo the bit width (its low 3 bits for `u8`, 5
//!   for `i32`/`u32`, 6 for `i64`/`u64`; a negative amount is read in two's complement), like
//!   Rust's `wrapping_shl` and Cranelift's `ishl`/`sshr`/`ushr`. `shr` is arithmetic (it
//!   copies the sign bit) on signed integers and logical (it shifts in zeros) on unsigned ones.
//! - **Unsigned integers** (`u8`, `u32`, `u64`) wrap like the signed ones (`0 - 1 == MAX`);
//!   `div` and `rem` are unsigned (Cranelift's `udiv`/`urem`; only a zero divisor is an
//!   error), comparisons and `min`/`max` are unsigned, `abs` is the identity, and `neg` does
//!   not apply (as in Rust: write `0 - x`).
//! - **Floats** follow IEEE 754 in round-to-nearest: `x / 0.0` is `±inf` or NaN, `rem` is
//!   Rust's `%` (C `fmod`), `pow` is `powf`, and `exp log sqrt sin cos tanh floor ceil abs atan asin acos`
//!   are Rust's `f32`/`f64` methods, computed in the operand's own precision.
//! - **Float `min` / `max`** are IEEE 754-2019 `minimum` / `maximum` (Cranelift's
//!   `fmin`/`fmax`): if either operand is NaN the result is NaN (the canonical quiet NaN), and
//!   `-0.0` counts as less than `+0.0`. So the built-in `max` monoid propagates NaN.
//! - **Comparisons** yield `bool`. Floats compare as IEEE (any comparison with NaN is false,
//!   except `ne`); `false < true`.
//! - **`and` / `or`** are on `bool`s; the interpreter evaluates the second operand only when
//!   it matters (see `crate::interp`), which can only change whether an error is raised.
//! - **Casts** are Rust `as` ([`Scalar::cast`]): float to integer truncates and saturates
//!   (a negative float or NaN becomes 0 as an unsigned integer, `1e10 as u32 == u32::MAX`),
//!   integer to integer keeps the low bits (`-1 as u8 == 255`), a number becomes `bool` when
//!   it is not zero.

use flow_runtime::fastmath::FlowExp;
use flow_runtime::portable::FlowMath;
use flow_runtime::{DType, Scalar};

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// Arithmetic negation (integers wrap).
    Neg,
    /// Logical not of a `bool`; on an integer, the bitwise complement.
    Not,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a % b`.
    Rem,
    /// `a << b`.
    Shl,
    /// `a >> b` (arithmetic).
    Shr,
    /// `a & b`: bitwise and of integers.
    BitAnd,
    /// `a | b`: bitwise or of integers.
    BitOr,
    /// `a ^ b`: bitwise exclusive or of integers.
    BitXor,
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
    /// `a && b` (`b` is evaluated only when `a` is true).
    And,
    /// `a || b` (`b` is evaluated only when `a` is false).
    Or,
    /// `min(a, b)`.
    Min,
    /// `max(a, b)`.
    Max,
    /// `pow(a, b)` on floats.
    Pow,
    /// `atan2(y, x)`: the angle of the point `(x, y)`, in `[-π, π]` (Rust's `atan2`).
    Atan2,
}

/// Built-in math functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MathFn {
    /// Absolute value (integers wrap: `abs(MIN) == MIN`).
    Abs,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Hyperbolic tangent.
    Tanh,
    /// Round toward negative infinity.
    Floor,
    /// Round toward positive infinity.
    Ceil,
    /// Arctangent, in `[-π/2, π/2]`.
    Atan,
    /// Arcsine, in `[-π/2, π/2]`; NaN outside `[-1, 1]`.
    Asin,
    /// Arccosine, in `[0, π]`; NaN outside `[-1, 1]`.
    Acos,
}

/// The built-in monoids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuiltinMonoid {
    /// `+` with identity 0.
    Sum,
    /// `*` with identity 1.
    Prod,
    /// `max` with identity `-inf` (integers: their minimum).
    Max,
    /// `min` with identity `inf` (integers: their maximum).
    Min,
    /// `||` with identity `false`.
    Any,
    /// `&&` with identity `true`.
    All,
}

/// Declares the text-form names of a fieldless enum: `name()` and `from_name()`.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The name used in the text form.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),*
                }
            }

            /// The variant with text-form name `name`.
            pub fn from_name(name: &str) -> Option<$ty> {
                $ty::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
    };
}

names!(UnOp { Neg => "neg", Not => "not" });

names!(BinOp {
    Add => "add", Sub => "sub", Mul => "mul", Div => "div", Rem => "rem", Shl => "shl",
    Shr => "shr", Eq => "eq", Ne => "ne", Lt => "lt", Le => "le", Gt => "gt", Ge => "ge",
    And => "and", Or => "or", Min => "min", Max => "max", Pow => "pow",
    Atan2 => "atan2", BitAnd => "band", BitOr => "bor", BitXor => "bxor",
});

impl BinOp {
    /// How the operator is written in a program: `+`, `<<`, `&&`, …; `min`, `max`, `pow`
    /// and `atan2` are written as calls.
    pub fn symbol(self) -> &'static str {
        use BinOp as B;
        match self {
            B::Add => "+",
            B::Sub => "-",
            B::Mul => "*",
            B::Div => "/",
            B::Rem => "%",
            B::Shl => "<<",
            B::Shr => ">>",
            B::BitAnd => "&",
            B::BitOr => "|",
            B::BitXor => "^",
            B::Eq => "==",
            B::Ne => "!=",
            B::Lt => "<",
            B::Le => "<=",
            B::Gt => ">",
            B::Ge => ">=",
            B::And => "&&",
            B::Or => "||",
            B::Min | B::Max | B::Pow | B::Atan2 => self.name(),
        }
    }
}

names!(MathFn {
    Abs => "abs", Exp => "exp", Log => "log", Sqrt => "sqrt", Sin => "sin", Cos => "cos",
    Tanh => "tanh", Floor => "floor", Ceil => "ceil", Atan => "atan", Asin => "asin",
    Acos => "acos",
});

names!(BuiltinMonoid {
    Sum => "sum", Prod => "prod", Max => "max", Min => "min", Any => "any", All => "all",
});

/// Why an operator could not produce a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    /// Integer division or remainder by zero.
    DivByZero,
    /// Integer `MIN / -1`, whose quotient does not fit.
    DivOverflow,
    /// The operand types do not fit the operator (a verified graph never does this).
    Operands,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpError::DivByZero => "integer division by zero",
            OpError::DivOverflow => "integer division overflow (MIN / -1)",
            OpError::Operands => "operator applied to operands of the wrong type",
        })
    }
}

impl std::error::Error for OpError {}

/// Applies a unary operator.
pub fn unary(op: UnOp, x: Scalar) -> Result<Scalar, OpError> {
    use Scalar as S;
    Ok(match (op, x) {
        (UnOp::Neg, S::F32(v)) => S::F32(-v),
        (UnOp::Neg, S::F64(v)) => S::F64(-v),
        (UnOp::Neg, S::I32(v)) => S::I32(v.wrapping_neg()),
        (UnOp::Neg, S::I64(v)) => S::I64(v.wrapping_neg()),
        (UnOp::Not, S::Bool(v)) => S::Bool(!v),
        (UnOp::Not, S::I32(v)) => S::I32(!v),
        (UnOp::Not, S::I64(v)) => S::I64(!v),
        (UnOp::Not, S::U8(v)) => S::U8(!v),
        (UnOp::Not, S::U32(v)) => S::U32(!v),
        (UnOp::Not, S::U64(v)) => S::U64(!v),
        _ => return Err(OpError::Operands),
    })
}

/// Applies a binary operator to two operands of the same type.
pub fn binary(op: BinOp, a: Scalar, b: Scalar) -> Result<Scalar, OpError> {
    use Scalar as S;
    match (a, b) {
        (S::F32(x), S::F32(y)) => float_op(op, x, y, S::F32),
        (S::F64(x), S::F64(y)) => float_op(op, x, y, S::F64),
        (S::I32(x), S::I32(y)) => i32_op(op, x, y),
        (S::I64(x), S::I64(y)) => i64_op(op, x, y),
        (S::U8(x), S::U8(y)) => u8_op(op, x, y),
        (S::U32(x), S::U32(y)) => u32_op(op, x, y),
        (S::U64(x), S::U64(y)) => u64_op(op, x, y),
        (S::Bool(x), S::Bool(y)) => bool_op(op, x, y),
        _ => Err(OpError::Operands),
    }
}

/// Applies a built-in math function.
pub fn math(f: MathFn, x: Scalar) -> Result<Scalar, OpError> {
    use Scalar as S;
    Ok(match x {
        S::F32(v) => S::F32(float_fn(f, v)),
        S::F64(v) => S::F64(float_fn(f, v)),
        S::I32(v) if f == MathFn::Abs => S::I32(v.wrapping_abs()),
        S::I64(v) if f == MathFn::Abs => S::I64(v.wrapping_abs()),
        S::U8(_) | S::U32(_) | S::U64(_) if f == MathFn::Abs => x,
        _ => return Err(OpError::Operands),
    })
}

/// The identity of a built-in monoid over `dtype`, or `None` when the monoid does not apply
/// to the type (`sum` of `bool`s, `any` of floats, ...).
pub fn builtin_identity(m: BuiltinMonoid, dtype: DType) -> Option<Scalar> {
    use BuiltinMonoid as B;
    use Scalar as S;
    Some(match (m, dtype) {
        (B::Sum, d) if is_numeric(d) => S::I64(0).cast(d),
        (B::Prod, d) if is_numeric(d) => S::I64(1).cast(d),
        (B::Max, DType::F32) => S::F32(f32::NEG_INFINITY),
        (B::Max, DType::F64) => S::F64(f64::NEG_INFINITY),
        (B::Max, DType::I32) => S::I32(i32::MIN),
        (B::Max, DType::I64) => S::I64(i64::MIN),
        (B::Max, d) if d.is_unsigned() => S::I64(0).cast(d),
        (B::Min, DType::F32) => S::F32(f32::INFINITY),
        (B::Min, DType::F64) => S::F64(f64::INFINITY),
        (B::Min, DType::I32) => S::I32(i32::MAX),
        (B::Min, DType::I64) => S::I64(i64::MAX),
        (B::Min, DType::U8) => S::U8(u8::MAX),
        (B::Min, DType::U32) => S::U32(u32::MAX),
        (B::Min, DType::U64) => S::U64(u64::MAX),
        (B::Any, DType::Bool) => S::Bool(false),
        (B::All, DType::Bool) => S::Bool(true),
        _ => return None,
    })
}

/// The binary operator that a built-in monoid combines with.
pub fn builtin_combine(m: BuiltinMonoid) -> BinOp {
    match m {
        BuiltinMonoid::Sum => BinOp::Add,
        BuiltinMonoid::Prod => BinOp::Mul,
        BuiltinMonoid::Max => BinOp::Max,
        BuiltinMonoid::Min => BinOp::Min,
        BuiltinMonoid::Any => BinOp::Or,
        BuiltinMonoid::All => BinOp::And,
    }
}

/// Whether a type is an integer or a float.
pub fn is_numeric(d: DType) -> bool {
    d.is_int() || d.is_float()
}

/// The result type of `op` on two operands of type `d`, or `None` when `op` does not apply.
pub fn binary_result(op: BinOp, d: DType) -> Option<DType> {
    use BinOp as B;
    match op {
        B::Add | B::Sub | B::Mul | B::Div | B::Rem | B::Min | B::Max if is_numeric(d) => Some(d),
        B::Pow | B::Atan2 if d.is_float() => Some(d),
        B::Shl | B::Shr | B::BitAnd | B::BitOr | B::BitXor if d.is_int() => Some(d),
        B::Eq | B::Ne | B::Lt | B::Le | B::Gt | B::Ge => Some(DType::Bool),
        B::And | B::Or if d == DType::Bool => Some(d),
        _ => None,
    }
}

/// The result type of `op` on an operand of type `d`, or `None` when `op` does not apply.
pub fn unary_result(op: UnOp, d: DType) -> Option<DType> {
    match op {
        UnOp::Neg if d.is_float() || d.is_signed_int() => Some(d),
        UnOp::Not if d == DType::Bool || d.is_int() => Some(d),
        _ => None,
    }
}

/// The result type of `f` on an operand of type `d`, or `None` when `f` does not apply.
pub fn math_result(f: MathFn, d: DType) -> Option<DType> {
    match f {
        MathFn::Abs if is_numeric(d) => Some(d),
        _ if d.is_float() => Some(d),
        _ => None,
    }
}

/// The float operations, shared by `f32` and `f64`.
trait Float: Copy + PartialOrd + std::ops::Neg<Output = Self> {
    const NAN: Self;
    fn is_nan(self) -> bool;
    fn is_sign_negative(self) -> bool;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn rem(self, o: Self) -> Self;
    fn powf(self, o: Self) -> Self;
    fn atan2(self, o: Self) -> Self;
    fn apply(self, f: MathFn) -> Self;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const NAN: Self = <$t>::NAN;
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn is_sign_negative(self) -> bool {
                <$t>::is_sign_negative(self)
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn rem(self, o: Self) -> Self {
                self % o
            }
            fn powf(self, o: Self) -> Self {
                self.flow_powf(o)
            }
            fn atan2(self, o: Self) -> Self {
                self.flow_atan2(o)
            }
            fn apply(self, f: MathFn) -> Self {
                match f {
                    MathFn::Abs => self.abs(),
                    MathFn::Exp => self.flow_exp(),
                    MathFn::Log => self.flow_ln(),
                    MathFn::Sqrt => self.sqrt(),
                    MathFn::Sin => self.flow_sin(),
                    MathFn::Cos => self.flow_cos(),
                    MathFn::Tanh => self.flow_tanh(),
                    MathFn::Floor => self.floor(),
                    MathFn::Ceil => self.ceil(),
                    MathFn::Atan => self.flow_atan(),
                    MathFn::Asin => self.flow_asin(),
                    MathFn::Acos => self.flow_acos(),
                }
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);

/// A float math function.
fn float_fn<T: Float>(f: MathFn, x: T) -> T {
    x.apply(f)
}

/// IEEE 754-2019 `maximum`: NaN if either operand is NaN, and `-0 < +0`.
fn fmax<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        T::NAN
    } else if a > b || (a == b && !a.is_sign_negative()) {
        a
    } else {
        b
    }
}

/// IEEE 754-2019 `minimum`: NaN if either operand is NaN, and `-0 < +0`.
fn fmin<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        T::NAN
    } else if a < b || (a == b && a.is_sign_negative()) {
        a
    } else {
        b
    }
}

/// A binary operator on two floats; `wrap` builds the scalar of their type.
fn float_op<T: Float>(op: BinOp, x: T, y: T, wrap: fn(T) -> Scalar) -> Result<Scalar, OpError> {
    use BinOp as B;
    Ok(match op {
        B::Add => wrap(x.add(y)),
        B::Sub => wrap(x.sub(y)),
        B::Mul => wrap(x.mul(y)),
        B::Div => wrap(x.div(y)),
        B::Rem => wrap(x.rem(y)),
        B::Pow => wrap(x.powf(y)),
        B::Atan2 => wrap(x.atan2(y)),
        B::Min => wrap(fmin(x, y)),
        B::Max => wrap(fmax(x, y)),
        B::Eq => Scalar::Bool(x == y),
        B::Ne => Scalar::Bool(x != y),
        B::Lt => Scalar::Bool(x < y),
        B::Le => Scalar::Bool(x <= y),
        B::Gt => Scalar::Bool(x > y),
        B::Ge => Scalar::Bool(x >= y),
        B::Shl | B::Shr | B::And | B::Or | B::BitAnd | B::BitOr | B::BitXor => {
            return Err(OpError::Operands)
        }
    })
}

/// Declares a binary-operator function on one integer type.
macro_rules! int_op {
    ($name:ident, $t:ty, $variant:ident) => {
        /// A binary operator on two integers of one type.
        fn $name(op: BinOp, x: $t, y: $t) -> Result<Scalar, OpError> {
            use BinOp as B;
            Ok(match op {
                B::Add => Scalar::$variant(x.wrapping_add(y)),
                B::Sub => Scalar::$variant(x.wrapping_sub(y)),
                B::Mul => Scalar::$variant(x.wrapping_mul(y)),
                B::Div => {
                    if y == 0 {
                        return Err(OpError::DivByZero);
                    }
                    Scalar::$variant(x.checked_div(y).ok_or(OpError::DivOverflow)?)
                }
                B::Rem => {
                    if y == 0 {
                        return Err(OpError::DivByZero);
                    }
                    Scalar::$variant(x.wrapping_rem(y))
                }
                B::Shl => Scalar::$variant(x.wrapping_shl(y as u32)),
                B::Shr => Scalar::$variant(x.wrapping_shr(y as u32)),
                B::BitAnd => Scalar::$variant(x & y),
                B::BitOr => Scalar::$variant(x | y),
                B::BitXor => Scalar::$variant(x ^ y),
                B::Min => Scalar::$variant(x.min(y)),
                B::Max => Scalar::$variant(x.max(y)),
                B::Eq => Scalar::Bool(x == y),
                B::Ne => Scalar::Bool(x != y),
                B::Lt => Scalar::Bool(x < y),
                B::Le => Scalar::Bool(x <= y),
                B::Gt => Scalar::Bool(x > y),
                B::Ge => Scalar::Bool(x >= y),
                B::Pow | B::Atan2 | B::And | B::Or => return Err(OpError::Operands),
            })
        }
    };
}
int_op!(i32_op, i32, I32);
int_op!(i64_op, i64, I64);
int_op!(u8_op, u8, U8);
int_op!(u32_op, u32, U32);
int_op!(u64_op, u64, U64);

/// A binary operator on two `bool`s.
fn bool_op(op: BinOp, x: bool, y: bool) -> Result<Scalar, OpError> {
    use BinOp as B;
    Ok(Scalar::Bool(match op {
        B::And => x && y,
        B::Or => x || y,
        B::Eq => x == y,
        B::Ne => x != y,
        B::Lt => !x & y,
        B::Le => x <= y,
        B::Gt => x & !y,
        B::Ge => x >= y,
        _ => return Err(OpError::Operands),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(op: BinOp, a: Scalar, b: Scalar) -> Result<Scalar, OpError> {
        binary(op, a, b)
    }

    #[test]
    fn integer_division_errors_and_wrapping() {
        use Scalar::{I32, I64};
        assert_eq!(bin(BinOp::Div, I64(7), I64(-2)), Ok(I64(-3)));
        assert_eq!(bin(BinOp::Rem, I64(-7), I64(2)), Ok(I64(-1)));
        assert_eq!(bin(BinOp::Div, I64(1), I64(0)), Err(OpError::DivByZero));
        assert_eq!(bin(BinOp::Rem, I32(1), I32(0)), Err(OpError::DivByZero));
        assert_eq!(
            bin(BinOp::Div, I64(i64::MIN), I64(-1)),
            Err(OpError::DivOverflow)
        );
        assert_eq!(
            bin(BinOp::Div, I32(i32::MIN), I32(-1)),
            Err(OpError::DivOverflow)
        );
        assert_eq!(bin(BinOp::Rem, I32(i32::MIN), I32(-1)), Ok(I32(0)));
        assert_eq!(bin(BinOp::Add, I32(i32::MAX), I32(1)), Ok(I32(i32::MIN)));
        assert_eq!(bin(BinOp::Mul, I64(i64::MAX), I64(2)), Ok(I64(-2)));
        assert_eq!(unary(UnOp::Neg, I64(i64::MIN)), Ok(I64(i64::MIN)));
        assert_eq!(math(MathFn::Abs, I32(i32::MIN)), Ok(I32(i32::MIN)));
    }

    #[test]
    fn shifts_take_the_amount_modulo_the_width() {
        use Scalar::{I32, I64};
        assert_eq!(bin(BinOp::Shl, I64(1), I64(3)), Ok(I64(8)));
        assert_eq!(bin(BinOp::BitAnd, I64(12), I64(10)), Ok(I64(8)));
        assert_eq!(bin(BinOp::BitOr, I32(12), I32(10)), Ok(I32(14)));
        assert_eq!(bin(BinOp::BitXor, I64(-1), I64(5)), Ok(I64(-6)));
        assert_eq!(unary(UnOp::Not, I32(0)), Ok(I32(-1)));
        assert_eq!(
            bin(BinOp::BitAnd, Scalar::F32(1.0), Scalar::F32(1.0)),
            Err(OpError::Operands)
        );
        assert_eq!(bin(BinOp::Shl, I64(1), I64(64)), Ok(I64(1)));
        assert_eq!(bin(BinOp::Shl, I32(1), I32(33)), Ok(I32(2)));
        assert_eq!(bin(BinOp::Shl, I64(1), I64(-1)), Ok(I64(i64::MIN)));
        assert_eq!(bin(BinOp::Shr, I64(-8), I64(1)), Ok(I64(-4)));
        assert_eq!(bin(BinOp::Shr, I32(-1), I32(40)), Ok(I32(-1)));
    }

    #[test]
    fn unsigned_integers_wrap_divide_and_shift_unsigned() {
        use Scalar::{U32, U64, U8};
        assert_eq!(bin(BinOp::Sub, U32(3), U32(5)), Ok(U32(u32::MAX - 1)));
        assert_eq!(bin(BinOp::Add, U8(200), U8(100)), Ok(U8(44)));
        assert_eq!(
            bin(BinOp::Mul, U64(u64::MAX), U64(2)),
            Ok(U64(u64::MAX - 1))
        );
        assert_eq!(
            bin(BinOp::Div, U32(u32::MAX), U32(2)),
            Ok(U32(u32::MAX / 2))
        );
        assert_eq!(bin(BinOp::Rem, U8(255), U8(10)), Ok(U8(5)));
        assert_eq!(bin(BinOp::Div, U64(1), U64(0)), Err(OpError::DivByZero));
        assert_eq!(bin(BinOp::Rem, U8(1), U8(0)), Err(OpError::DivByZero));
        assert_eq!(
            bin(BinOp::Lt, U32(1), U32(u32::MAX)),
            Ok(Scalar::Bool(true))
        );
        assert_eq!(bin(BinOp::Max, U64(1 << 63), U64(1)), Ok(U64(1 << 63)));
        // `>>` is logical; the amount is taken modulo the width.
        assert_eq!(bin(BinOp::Shr, U32(u32::MAX), U32(28)), Ok(U32(15)));
        assert_eq!(bin(BinOp::Shr, U8(128), U8(9)), Ok(U8(64)));
        assert_eq!(bin(BinOp::Shl, U8(1), U8(8)), Ok(U8(1)));
        assert_eq!(bin(BinOp::Shl, U64(1), U64(65)), Ok(U64(2)));
        assert_eq!(unary(UnOp::Not, U8(0)), Ok(U8(255)));
        assert_eq!(unary(UnOp::Neg, U32(1)), Err(OpError::Operands));
        assert_eq!(unary_result(UnOp::Neg, DType::U32), None);
        assert_eq!(math(MathFn::Abs, U64(u64::MAX)), Ok(U64(u64::MAX)));
        assert_eq!(builtin_identity(BuiltinMonoid::Max, DType::U8), Some(U8(0)));
        assert_eq!(
            builtin_identity(BuiltinMonoid::Min, DType::U32),
            Some(U32(u32::MAX))
        );
        assert_eq!(
            builtin_identity(BuiltinMonoid::Prod, DType::U64),
            Some(U64(1))
        );
    }

    #[test]
    fn casts_to_unsigned_saturate_floats_and_keep_low_bits() {
        use Scalar::{F32, F64, I64, U32, U64, U8};
        assert_eq!(F32(-1.5).cast(DType::U32), U32(0));
        assert_eq!(F64(1e10).cast(DType::U32), U32(u32::MAX));
        assert_eq!(F64(f64::NAN).cast(DType::U64), U64(0));
        assert_eq!(F32(300.0).cast(DType::U8), U8(255));
        assert_eq!(F64(255.9).cast(DType::U8), U8(255));
        assert_eq!(I64(-1).cast(DType::U8), U8(255));
        assert_eq!(I64(257).cast(DType::U8), U8(1));
        assert_eq!(U64(u64::MAX).cast(DType::I64), I64(-1));
        assert_eq!(U32(u32::MAX).cast(DType::I64), I64(u32::MAX as i64));
        assert_eq!(U64(u64::MAX).cast(DType::F32), F32(18446744073709551616.0));
        assert_eq!(U8(2).cast(DType::Bool), Scalar::Bool(true));
    }

    #[test]
    fn float_min_max_propagate_nan_and_order_zeros() {
        use Scalar::F32;
        let max = |a, b| bin(BinOp::Max, F32(a), F32(b)).unwrap();
        let min = |a, b| bin(BinOp::Min, F32(a), F32(b)).unwrap();
        assert_eq!(max(1.0, 2.0), F32(2.0));
        assert_eq!(min(1.0, 2.0), F32(1.0));
        for (a, b) in [(f32::NAN, 1.0), (1.0, f32::NAN)] {
            let (Scalar::F32(x), Scalar::F32(y)) = (max(a, b), min(a, b)) else {
                panic!("float result expected");
            };
            assert!(x.is_nan() && y.is_nan());
        }
        let bits = |s: Scalar| match s {
            Scalar::F32(v) => v.to_bits(),
            _ => 0,
        };
        assert_eq!(bits(max(-0.0, 0.0)), 0.0f32.to_bits());
        assert_eq!(bits(max(0.0, -0.0)), 0.0f32.to_bits());
        assert_eq!(bits(min(-0.0, 0.0)), (-0.0f32).to_bits());
        assert_eq!(bits(min(0.0, -0.0)), (-0.0f32).to_bits());
    }

    #[test]
    fn comparisons_and_logic() {
        use Scalar::{Bool, F64};
        assert_eq!(bin(BinOp::Lt, F64(f64::NAN), F64(1.0)), Ok(Bool(false)));
        assert_eq!(bin(BinOp::Ne, F64(f64::NAN), F64(f64::NAN)), Ok(Bool(true)));
        assert_eq!(bin(BinOp::Lt, Bool(false), Bool(true)), Ok(Bool(true)));
        assert_eq!(bin(BinOp::Gt, Bool(false), Bool(true)), Ok(Bool(false)));
        assert_eq!(bin(BinOp::And, Bool(true), Bool(false)), Ok(Bool(false)));
        assert_eq!(
            bin(BinOp::Add, Bool(true), Bool(false)),
            Err(OpError::Operands)
        );
        assert_eq!(
            bin(BinOp::Add, F64(1.0), Scalar::F32(1.0)),
            Err(OpError::Operands)
        );
        assert_eq!(math(MathFn::Exp, Scalar::I64(1)), Err(OpError::Operands));
    }

    #[test]
    fn identities() {
        assert_eq!(
            builtin_identity(BuiltinMonoid::Max, DType::F32),
            Some(Scalar::F32(f32::NEG_INFINITY))
        );
        assert_eq!(
            builtin_identity(BuiltinMonoid::Min, DType::I32),
            Some(Scalar::I32(i32::MAX))
        );
        assert_eq!(
            builtin_identity(BuiltinMonoid::Prod, DType::F64),
            Some(Scalar::F64(1.0))
        );
        assert_eq!(builtin_identity(BuiltinMonoid::Sum, DType::Bool), None);
        assert_eq!(builtin_identity(BuiltinMonoid::Any, DType::F32), None);
    }
}
