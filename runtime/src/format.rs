//! How `print` writes values: scalars as Rust's `{}` does, tensors as nested lists or a summary.
//!
//! A number prints as the shortest text that reads back to the same value of its type
//! (`1`, `0.5`, `1.4142135`, `inf`, `NaN`). A tensor of up to [`SUMMARY_THRESHOLD`] elements
//! prints as nested lists, `[[1, 2], [3, 4]]`; a larger one prints its type, shape and a
//! summary, `f32[512, 1000] (512000 elements: min -3.2, max 4.1, mean 0.0012)`.

use std::fmt;

use crate::tensor::{format_shape, Data, Scalar, Tensor};

/// Tensors with more elements than this print as a summary instead of their elements.
pub const SUMMARY_THRESHOLD: usize = 1000;

/// Formats one value exactly as Rust's `{}` formats the underlying primitive.
pub fn format_scalar(s: &Scalar) -> String {
    match s {
        Scalar::F32(v) => v.to_string(),
        Scalar::F64(v) => v.to_string(),
        Scalar::I32(v) => v.to_string(),
        Scalar::I64(v) => v.to_string(),
        Scalar::U8(v) => v.to_string(),
        Scalar::U32(v) => v.to_string(),
        Scalar::U64(v) => v.to_string(),
        Scalar::Bool(v) => v.to_string(),
    }
}

/// Formats a tensor for `print`: a scalar for rank 0, nested lists up to
/// [`SUMMARY_THRESHOLD`] elements, a one-line summary above it.
pub fn format_tensor(t: &Tensor) -> String {
    if t.len() > SUMMARY_THRESHOLD {
        return summary(t);
    }
    let mut out = String::new();
    let mut next = 0;
    nested(t, 0, &mut next, &mut out);
    out
}

/// Writes the sub-tensor at dimension `dim` whose first element is `*next`.
fn nested(t: &Tensor, dim: usize, next: &mut usize, out: &mut String) {
    if dim == t.rank() {
        out.push_str(&format_scalar(&t.get(*next)));
        *next += 1;
        return;
    }
    out.push('[');
    for i in 0..t.shape[dim] {
        if i > 0 {
            out.push_str(", ");
        }
        nested(t, dim + 1, next, out);
    }
    out.push(']');
}

/// The one-line summary of a large tensor; `t` is not empty.
fn summary(t: &Tensor) -> String {
    let head = format!(
        "{}{} ({} elements: ",
        t.dtype(),
        format_shape(&t.shape),
        t.len()
    );
    let stats = match &t.data {
        Data::F32(v) => float_stats(v.iter().map(|&x| x as f64), |x| (x as f32).to_string()),
        Data::F64(v) => float_stats(v.iter().copied(), |x| x.to_string()),
        Data::I32(v) => int_stats(v, |x| x as f64),
        Data::I64(v) => int_stats(v, |x| x as f64),
        Data::U8(v) => int_stats(v, |x| x as f64),
        Data::U32(v) => int_stats(v, |x| x as f64),
        Data::U64(v) => int_stats(v, |x| x as f64),
        Data::Bool(v) => format!("{} true", v.iter().filter(|&&b| b).count()),
    };
    format!("{head}{stats})")
}

/// Min, max and mean of floats; NaNs are left out of min and max and counted at the end.
fn float_stats(values: impl Iterator<Item = f64>, show: impl Fn(f64) -> String) -> String {
    let (mut min, mut max, mut sum, mut n, mut nans) =
        (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize, 0usize);
    for x in values {
        n += 1;
        sum += x;
        if x.is_nan() {
            nans += 1;
        } else {
            min = min.min(x);
            max = max.max(x);
        }
    }
    if nans == n {
        (min, max) = (f64::NAN, f64::NAN);
    }
    let mut s = format!(
        "min {}, max {}, mean {}",
        show(min),
        show(max),
        sum / n as f64
    );
    if nans > 0 {
        s += &format!(", {nans} NaN");
    }
    s
}

/// Min and max (exact, in the element type) and mean (in f64) of integers; `v` is not empty.
fn int_stats<T: Copy + Ord + fmt::Display>(v: &[T], to_f64: fn(T) -> f64) -> String {
    let min = v
        .iter()
        .min()
        .copied()
        .map_or(String::new(), |x| x.to_string());
    let max = v
        .iter()
        .max()
        .copied()
        .map_or(String::new(), |x| x.to_string());
    let sum: f64 = v.iter().map(|&x| to_f64(x)).sum();
    format!("min {min}, max {max}, mean {}", sum / v.len() as f64)
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_scalar(self))
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_tensor(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    fn t(shape: &[usize], data: Data) -> Tensor {
        Tensor::new(shape.to_vec(), data).unwrap()
    }

    #[test]
    fn scalars_print_like_rust_display() {
        assert_eq!(format_scalar(&Scalar::F32(1.0)), "1");
        assert_eq!(format_scalar(&Scalar::F32(0.5)), "0.5");
        assert_eq!(format_scalar(&Scalar::F32(2f32.sqrt())), "1.4142135");
        assert_eq!(
            format_scalar(&Scalar::F64(2f64.sqrt())),
            "1.4142135623730951"
        );
        assert_eq!(format_scalar(&Scalar::F32(-0.0)), "-0");
        assert_eq!(format_scalar(&Scalar::F32(f32::INFINITY)), "inf");
        assert_eq!(format_scalar(&Scalar::F64(f64::NEG_INFINITY)), "-inf");
        assert_eq!(format_scalar(&Scalar::F32(f32::NAN)), "NaN");
        assert_eq!(format_scalar(&Scalar::F32(1e20)), "100000000000000000000");
        assert_eq!(format_scalar(&Scalar::I32(-7)), "-7");
        assert_eq!(
            format_scalar(&Scalar::I64(i64::MIN)),
            "-9223372036854775808"
        );
        assert_eq!(format_scalar(&Scalar::Bool(true)), "true");
        assert_eq!(Scalar::Bool(false).to_string(), "false");
    }

    #[test]
    fn small_tensors_print_as_nested_lists() {
        assert_eq!(format_tensor(&Tensor::from_scalar(Scalar::F32(2.5))), "2.5");
        assert_eq!(
            format_tensor(&t(&[3], Data::I64(vec![1, -2, 3]))),
            "[1, -2, 3]"
        );
        assert_eq!(
            format_tensor(&t(&[2, 2], Data::F32(vec![1.0, 2.0, 3.0, 4.0]))),
            "[[1, 2], [3, 4]]"
        );
        assert_eq!(
            t(&[2, 1, 2], Data::Bool(vec![true, false, false, true])).to_string(),
            "[[[true, false]], [[false, true]]]"
        );
        assert_eq!(
            format_tensor(&t(&[1, 3], Data::F64(vec![0.1, f64::NAN, -1.0]))),
            "[[0.1, NaN, -1]]"
        );
    }

    #[test]
    fn empty_dimensions_print_as_empty_lists() {
        assert_eq!(
            format_tensor(&Tensor::zeros(DType::F32, &[0]).unwrap()),
            "[]"
        );
        assert_eq!(
            format_tensor(&Tensor::zeros(DType::I32, &[0, 3]).unwrap()),
            "[]"
        );
        assert_eq!(
            format_tensor(&Tensor::zeros(DType::I32, &[2, 0]).unwrap()),
            "[[], []]"
        );
    }

    #[test]
    fn the_threshold_is_more_than_1000_elements() {
        let full = Tensor::zeros(DType::I32, &[1000]).unwrap();
        assert!(format_tensor(&full).starts_with("[0, 0,"));
        let big = Tensor::zeros(DType::I32, &[1001]).unwrap();
        assert_eq!(
            format_tensor(&big),
            "i32[1001] (1001 elements: min 0, max 0, mean 0)"
        );
    }

    #[test]
    fn float_summaries() {
        let mut v = vec![0.25f32; 512 * 1000];
        v[3] = -3.2;
        v[77] = 4.1;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert_eq!(
            format_tensor(&t(&[512, 1000], Data::F32(v))),
            format!("f32[512, 1000] (512000 elements: min -3.2, max 4.1, mean {mean})")
        );
        let v: Vec<f64> = (0..2000).map(|i| i as f64 / 4.0).collect();
        assert_eq!(
            format_tensor(&t(&[2, 1000], Data::F64(v))),
            "f64[2, 1000] (2000 elements: min 0, max 499.75, mean 249.875)"
        );
        let mut v = vec![1.0f32; 1500];
        v[0] = f32::NAN;
        v[1] = f32::NEG_INFINITY;
        assert_eq!(
            format_tensor(&t(&[1500], Data::F32(v))),
            "f32[1500] (1500 elements: min -inf, max 1, mean NaN, 1 NaN)"
        );
        let v = vec![f64::NAN; 1001];
        assert_eq!(
            format_tensor(&t(&[1001], Data::F64(v))),
            "f64[1001] (1001 elements: min NaN, max NaN, mean NaN, 1001 NaN)"
        );
    }

    #[test]
    fn integer_and_bool_summaries() {
        let mut v: Vec<i64> = (0..2000).collect();
        v[5] = i64::MIN;
        v[6] = i64::MAX;
        let s = format_tensor(&t(&[2000], Data::I64(v)));
        assert!(
            s.starts_with(
                "i64[2000] (2000 elements: min -9223372036854775808, max 9223372036854775807, mean "
            ),
            "{s}"
        );
        let v: Vec<bool> = (0..2000).map(|i| i % 5 < 3).collect();
        assert_eq!(
            format_tensor(&t(&[2000], Data::Bool(v))),
            "bool[2000] (2000 elements: 1200 true)"
        );
    }
}
