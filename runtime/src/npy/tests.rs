//! `.npy` round trips for every dtype and shape, headers NumPy writes, and every kind of
//! malformed file rejected with its error.

use super::*;
use crate::tensor::Scalar;

/// A test tensor of `dtype` and `shape` whose elements are distinct where possible.
fn sample(dtype: DType, shape: &[usize]) -> Tensor {
    let mut t = Tensor::zeros(dtype, shape).unwrap();
    for i in 0..t.len() {
        let x = i as f64 * 1.5 - 3.25;
        t.set(
            i,
            match dtype {
                DType::Bool => Scalar::Bool(i % 3 == 1),
                DType::I32 | DType::I64 => Scalar::I64(i as i64 * 1_000_003 - 7),
                // Wraps: the high bit is set in some elements of every width.
                DType::U8 | DType::U32 | DType::U64 => Scalar::I64(i as i64 * 1_000_003 - 7),
                _ => Scalar::F64(x),
            },
        );
    }
    t
}

#[test]
fn round_trips_every_dtype_and_shape() {
    let shapes: [&[usize]; 6] = [&[], &[5], &[2, 3, 4], &[3, 0, 2], &[0], &[1, 1, 1, 1]];
    for dtype in DType::ALL {
        for shape in shapes {
            let t = sample(dtype, shape);
            let bytes = write_npy(&t);
            assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(bytes[9 + header_len], b'\n');
            assert_eq!(bytes.len(), 10 + header_len + t.len() * dtype.size_bytes());
            assert_eq!(read_npy(&bytes).unwrap(), t, "{dtype} {shape:?}");
        }
    }
}

#[test]
fn the_length_of_a_file_is_known_from_its_header_alone() {
    let bytes = write_npy(&sample(DType::F64, &[3, 5]));
    let mut read = 0;
    // A reader asks for more until the header is whole, then knows the total.
    loop {
        match file_len(&bytes[..read]).unwrap() {
            FileLen::AtLeast(n) => {
                assert!(n > read && n <= bytes.len(), "{read} -> {n}");
                read = n;
            }
            FileLen::Total(n) => {
                assert_eq!(n, bytes.len());
                break;
            }
        }
    }
    assert!(
        read < bytes.len(),
        "the body is not needed to know the length"
    );
    // Not a `.npy` file: known after its first byte.
    assert_eq!(file_len(b"\0"), Err(NpyError::BadMagic));
    let mut zeros = vec![0u8; 16];
    assert_eq!(file_len(&zeros), Err(NpyError::BadMagic));
    zeros[..8].copy_from_slice(b"\x93NUMPY\x09\x00");
    assert!(matches!(
        file_len(&zeros),
        Err(NpyError::UnsupportedVersion { major: 9, .. })
    ));
}

#[test]
fn round_trips_special_floats() {
    let t = Tensor::new(
        vec![5],
        Data::F64(vec![
            f64::INFINITY,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            -1e-300,
        ]),
    )
    .unwrap();
    assert_eq!(read_npy(&write_npy(&t)).unwrap(), t);
    let nan = Tensor::from_scalar(Scalar::F32(f32::NAN));
    let back = read_npy(&write_npy(&nan)).unwrap();
    assert!(matches!(back.data, Data::F32(ref v) if v[0].is_nan()));
}

/// The header text of a version 1.0 file.
fn header_of(bytes: &[u8]) -> &str {
    let n = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    std::str::from_utf8(&bytes[10..10 + n]).unwrap()
}

#[test]
fn writes_the_header_numpy_writes() {
    let cases = [
        (
            sample(DType::F32, &[2, 3]),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        ),
        (
            sample(DType::Bool, &[7]),
            "{'descr': '|b1', 'fortran_order': False, 'shape': (7,), }",
        ),
        (
            sample(DType::I64, &[]),
            "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
        ),
        (
            sample(DType::U8, &[4]),
            "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }",
        ),
        (
            sample(DType::U32, &[4]),
            "{'descr': '<u4', 'fortran_order': False, 'shape': (4,), }",
        ),
        (
            sample(DType::U64, &[4]),
            "{'descr': '<u8', 'fortran_order': False, 'shape': (4,), }",
        ),
    ];
    for (t, want) in cases {
        let bytes = write_npy(&t);
        let header = header_of(&bytes);
        assert_eq!(header.trim_end(), want);
        assert!(header.ends_with(" \n"));
        assert_eq!((10 + header.len()) % 64, 0);
    }
}

#[test]
fn writes_version_2_for_huge_headers() {
    let shape = vec![1usize; 30_000];
    let t = sample(DType::I32, &shape);
    let bytes = write_npy(&t);
    assert_eq!(&bytes[6..8], &[2, 0]);
    let header_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert_eq!((12 + header_len) % 64, 0);
    assert_eq!(read_npy(&bytes).unwrap(), t);
}

/// Builds a file by hand: magic, version, little-endian header length, header, data.
fn hand_built(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x93, b'N', b'U', b'M', b'P', b'Y', major, 0];
    let n = header.len();
    if major == 1 {
        f.push((n & 0xff) as u8);
        f.push((n >> 8) as u8);
    } else {
        f.extend([n as u8, (n >> 8) as u8, (n >> 16) as u8, (n >> 24) as u8]);
    }
    f.extend_from_slice(header.as_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn reads_hand_built_version_1() {
    let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }          \n";
    let data = [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0, 1, 0, 0];
    let t = read_npy(&hand_built(1, header, &data)).unwrap();
    assert_eq!(t.shape, vec![3]);
    assert_eq!(t.data, Data::I32(vec![1, -2, 256]));
}

#[test]
fn reads_unsigned_files_as_numpy_writes_them() {
    let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }          \n";
    let t = read_npy(&hand_built(1, header, &[0, 200, 255])).unwrap();
    assert_eq!(t.data, Data::U8(vec![0, 200, 255]));
    let header = "{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }          \n";
    let data = [0xfe, 0xff, 0xff, 0xff, 1, 0, 0, 0];
    let t = read_npy(&hand_built(1, header, &data)).unwrap();
    assert_eq!(t.data, Data::U32(vec![u32::MAX - 1, 1]));
    let header = "{'descr': '>u4', 'fortran_order': False, 'shape': (2,), }          \n";
    assert!(read_npy(&hand_built(1, header, &data)).is_err());
}

#[test]
fn reads_hand_built_version_2_with_odd_formatting() {
    let header = "{ \"shape\" : ( 2 , 1 ) ,\t'fortran_order':True,'descr':\"<f8\"}\n";
    let mut data = Vec::new();
    data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf0, 0x3f]); // 1.0
    data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x04, 0xc0]); // -2.5
    let t = read_npy(&hand_built(2, header, &data)).unwrap();
    assert_eq!(t.shape, vec![2, 1]);
    assert_eq!(t.data, Data::F64(vec![1.0, -2.5]));
}

#[test]
fn reads_version_3_scalars_bools_and_python2_longs() {
    let header = "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n";
    let t = read_npy(&hand_built(3, header, &[1])).unwrap();
    assert_eq!(t, Tensor::from_scalar(Scalar::Bool(true)));
    let header = "{'descr': '<b1', 'fortran_order': False, 'shape': (2L, 2L)}";
    let t = read_npy(&hand_built(1, header, &[0, 1, 2, 0])).unwrap();
    assert_eq!(t.data, Data::Bool(vec![false, true, true, false]));
    let header = "{'descr': '<i8', 'fortran_order': False, 'shape': (0, 4), }\0\0";
    let t = read_npy(&hand_built(1, header, &[])).unwrap();
    assert_eq!(t.shape, vec![0, 4]);
}

fn err(header: &str, data: &[u8]) -> NpyError {
    read_npy(&hand_built(1, header, data)).unwrap_err()
}

#[test]
fn rejects_malformed_files_with_precise_errors() {
    let good = write_npy(&sample(DType::F32, &[2, 3]));

    let mut bad = good.clone();
    bad[1] = b'X';
    assert_eq!(read_npy(&bad).unwrap_err(), NpyError::BadMagic);
    assert_eq!(
        read_npy(b"hello world").unwrap_err().to_string(),
        "not a .npy file (bad magic bytes)"
    );
    assert!(matches!(
        read_npy(b"").unwrap_err(),
        NpyError::TruncatedHeader { found: 0, .. }
    ));

    assert_eq!(
        read_npy(&good[..40]).unwrap_err(),
        NpyError::TruncatedHeader {
            expected: 128,
            found: 40
        }
    );
    let e = read_npy(&good[..good.len() - 8]).unwrap_err();
    assert_eq!(
        e,
        NpyError::Truncated {
            expected: 24,
            found: 16
        }
    );
    assert_eq!(
        e.to_string(),
        "file is truncated: header says 24 bytes of data, found 16"
    );
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        read_npy(&long).unwrap_err(),
        NpyError::TrailingData {
            expected: 24,
            found: 25
        }
    ));

    let mut v4 = good.clone();
    v4[6] = 4;
    assert_eq!(
        read_npy(&v4).unwrap_err(),
        NpyError::UnsupportedVersion { major: 4, minor: 0 }
    );

    assert!(matches!(err("garbage!", &[]), NpyError::BadHeader(_)));
    assert!(matches!(
        err("{'descr': '<f4'", &[]),
        NpyError::BadHeader(_)
    ));
    assert!(matches!(err("[1, 2]", &[]), NpyError::BadHeader(_)));

    let e = err(
        "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
        &[0; 8],
    );
    assert_eq!(e, NpyError::UnsupportedDType("'<c8'".to_string()));
    assert!(e.to_string().contains("'<c8'"));
    let e = err(
        "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
        &[0; 4],
    );
    assert_eq!(e, NpyError::BigEndian(">f4".to_string()));
    assert!(e.to_string().contains("big-endian"));
    let e = err(
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
        &[0; 4],
    );
    assert!(matches!(e, NpyError::UnsupportedDType(_)));

    let e = err(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
        &[0; 24],
    );
    assert_eq!(e, NpyError::FortranOrder);
    assert!(e.to_string().contains("Fortran"));
}

#[test]
fn rejects_bad_header_dicts() {
    let cases = [
            ("{'descr': '<f4', 'shape': (1,), }", "missing key 'fortran_order'"),
            (
                "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
                "duplicate key 'descr'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                "unexpected key 'x'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                "shape dimension -1 is out of range",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4)}",
                "'shape' must be a tuple, found an integer",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (4,)}",
                "'fortran_order' must be True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                "unexpected text after the dict",
            ),
            (
                "{'descr': '<f4', 'fortran_order': Fals, 'shape': (1,)}",
                "unknown name 'Fals'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999,)}",
                "integer too large",
            ),
            ("{'descr: '<f4'}", "expected ':'"),
        ];
    for (header, want) in cases {
        let e = err(header, &[0; 4]);
        assert!(matches!(e, NpyError::BadHeader(_)), "{header}: {e:?}");
        assert!(e.to_string().contains(want), "{header}: {e}");
    }
    let deep = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}1{}}}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(err(&deep, &[]).to_string().contains("nest too deeply"));
}

#[test]
fn huge_shapes_fail_before_allocating() {
    let e = err(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776)}",
        &[],
    );
    assert!(matches!(
        e,
        NpyError::SizeOverflow(ShapeError::Overflow { .. })
    ));
    assert!(e.to_string().contains("[1099511627776, 1099511627776]"));
    let e = err(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1048576, 1048576)}",
        &[],
    );
    assert!(matches!(
        e,
        NpyError::SizeOverflow(ShapeError::TooLarge { .. })
    ));
    // A large but allowed shape with missing data is truncated, not allocated.
    let e = err(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824,)}",
        &[0; 4],
    );
    assert_eq!(
        e,
        NpyError::Truncated {
            expected: 1 << 32,
            found: 4
        }
    );
}

#[test]
fn never_panics_on_arbitrary_bytes() {
    let good = write_npy(&sample(DType::F64, &[3, 2]));
    for end in 0..=good.len() {
        let _ = read_npy(&good[..end]);
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        // Random bytes, sometimes behind a valid magic and version.
        let len = (next() % 200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if next() % 2 == 0 && bytes.len() >= 10 {
            bytes[..6].copy_from_slice(MAGIC);
            bytes[6] = 1 + (next() % 3) as u8;
            bytes[7] = 0;
        }
        let _ = read_npy(&bytes);
        // A valid file with a few bytes changed.
        let mut mutated = good.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % mutated.len();
            mutated[i] = next() as u8;
        }
        let _ = read_npy(&mutated);
    }
}
