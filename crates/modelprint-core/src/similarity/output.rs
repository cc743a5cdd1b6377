//! Result files, all written atomically (temp file + rename):
//! matrix CSV (ids as header row and first column, six decimals — METHODS §1.7),
//! NPY v1.0 (`<f4`, C order), and neighbours JSON lines.

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use super::{Matrix, Neighbours, SimilarityError};
use crate::error::Error;
use crate::sketch::write_atomic;

fn io_err(path: &Path, e: std::io::Error) -> SimilarityError {
    Error::io(path, &e)
}

/// Appends `v` with exactly six decimals, rounded half to even on the exact value (the same
/// digits as Rust's `{:.6}` and Python's `%.6f`), fast.
pub fn push_fixed6(out: &mut Vec<u8>, v: f32) {
    if !v.is_finite() || v.abs() >= 1e9 {
        out.extend_from_slice(format!("{v:.6}").as_bytes());
        return;
    }
    // f32 (24-bit mantissa) × 10^6 (14 significant bits) is exact in f64.
    let x = (v as f64 * 1e6).round_ties_even();
    let n = x.abs() as u64;
    if v.is_sign_negative() {
        out.push(b'-');
    }
    let (int, frac) = (n / 1_000_000, n % 1_000_000);
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut k = int;
    loop {
        i -= 1;
        buf[i] = b'0' + (k % 10) as u8;
        k /= 10;
        if k == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
    out.push(b'.');
    let mut f = [b'0'; 6];
    let mut k = frac;
    for d in f.iter_mut().rev() {
        *d = b'0' + (k % 10) as u8;
        k /= 10;
    }
    out.extend_from_slice(&f);
}

/// Whether a CSV cell would be read as a formula by a spreadsheet: it starts (after any
/// single quotes) with `=`, `+`, `-`, `@`, tab or CR and is not a plain number. Such cells
/// get one leading `'` (OWASP CSV injection advice); modelprint's CSV reader strips it
/// again. Must match `needsFormulaGuard` in src/util/csv.ts.
pub fn needs_formula_guard(s: &str) -> bool {
    let rest = s.trim_start_matches('\'');
    matches!(
        rest.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    ) && !(s.len() == rest.len() && is_plain_number(s))
}

fn is_plain_number(s: &str) -> bool {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let digits = mant.replacen('.', "", 1);
    let mant_ok = !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok
}

/// A CSV field, quoted when it holds a comma, quote, CR or LF (RFC 4180), with a leading
/// `'` when a spreadsheet would take it for a formula (`needs_formula_guard`).
pub fn push_csv_field(out: &mut Vec<u8>, s: &str) {
    let guarded;
    let s = if needs_formula_guard(s) {
        guarded = format!("'{s}");
        guarded.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Matrix CSV as pandas writes a labelled frame (the published `overlap_matrix.csv`):
/// header `,<col ids…>` (empty first cell), then one row per row id.
pub fn write_matrix_csv(
    path: &Path,
    row_ids: &[String],
    col_ids: &[String],
    m: &Matrix,
) -> Result<(), SimilarityError> {
    check_shape(row_ids, col_ids, m)?;
    write_atomic(path, |w| {
        let mut head = Vec::new();
        for id in col_ids {
            head.push(b',');
            push_csv_field(&mut head, id);
        }
        head.push(b'\n');
        w.write_all(&head)?;
        const BATCH: usize = 256;
        for start in (0..m.rows).step_by(BATCH) {
            let end = (start + BATCH).min(m.rows);
            let chunks: Vec<Vec<u8>> = (start..end)
                .into_par_iter()
                .map(|i| {
                    let mut line = Vec::with_capacity(m.cols * 10 + 32);
                    push_csv_field(&mut line, &row_ids[i]);
                    for &v in &m.data[i * m.cols..(i + 1) * m.cols] {
                        line.push(b',');
                        push_fixed6(&mut line, v);
                    }
                    line.push(b'\n');
                    line
                })
                .collect();
            for c in chunks {
                w.write_all(&c)?;
            }
        }
        Ok(())
    })
    .map_err(|e| io_err(path, e))
}

fn check_shape(row_ids: &[String], col_ids: &[String], m: &Matrix) -> Result<(), SimilarityError> {
    if row_ids.len() != m.rows || col_ids.len() != m.cols || m.data.len() != m.rows * m.cols {
        return Err(Error::usage(format!(
            "matrix is {}×{} ({} values) but {} row ids and {} column ids were given",
            m.rows,
            m.cols,
            m.data.len(),
            row_ids.len(),
            col_ids.len()
        )));
    }
    Ok(())
}

/// The NPY v1.0 header (magic, version, length, dict padded so data starts at a multiple of 64).
pub fn npy_header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let hlen = total - 10;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&(hlen as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Matrix as NPY v1.0, float32 little-endian, C order.
pub fn write_matrix_npy(path: &Path, m: &Matrix) -> Result<(), SimilarityError> {
    if m.data.len() != m.rows * m.cols {
        return Err(Error::usage("matrix data does not match its shape"));
    }
    write_atomic(path, |w| {
        w.write_all(&npy_header(m.rows, m.cols))?;
        let mut buf = Vec::with_capacity(1 << 20);
        for chunk in m.data.chunks(1 << 18) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })
    .map_err(|e| io_err(path, e))
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(
        serde_json::to_string(s)
            .expect("strings serialise")
            .as_bytes(),
    );
}

/// Neighbours as JSON lines: `{"model": id, "neighbours": [{"model": id, "score": s}, …]}`
/// per row model (scores with six decimals); failed models get `"failed": true`.
pub fn write_neighbours_jsonl(
    path: &Path,
    row_ids: &[String],
    col_ids: &[String],
    nb: &Neighbours,
    failed: &dyn Fn(usize) -> bool,
) -> Result<(), SimilarityError> {
    if nb.offsets.len() != row_ids.len() + 1 {
        return Err(Error::usage("neighbour lists do not match the model ids"));
    }
    write_atomic(path, |w| {
        let mut line = Vec::new();
        for (i, id) in row_ids.iter().enumerate() {
            line.clear();
            line.extend_from_slice(b"{\"model\":");
            push_json_string(&mut line, id);
            if failed(i) {
                line.extend_from_slice(b",\"failed\":true");
            }
            line.extend_from_slice(b",\"neighbours\":[");
            for (k, (j, s)) in nb.of(i).enumerate() {
                if k > 0 {
                    line.push(b',');
                }
                line.extend_from_slice(b"{\"model\":");
                push_json_string(&mut line, &col_ids[j as usize]);
                line.extend_from_slice(b",\"score\":");
                push_fixed6(&mut line, s);
                line.push(b'}');
            }
            line.extend_from_slice(b"]}\n");
            w.write_all(&line)?;
        }
        Ok(())
    })
    .map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed6_matches_std_formatting() {
        let mut seed = 99u64;
        let mut vals = vec![
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.0078125,
            0.5,
            1.0 / 3.0,
            0.9999995,
            0.0000005,
            123.456,
        ];
        for _ in 0..20000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            vals.push(((seed % 2_000_001) as f32 / 1_000_000.0) - 1.0);
            vals.push(f32::from_bits((seed >> 32) as u32 & 0x3f7f_ffff));
        }
        for v in vals {
            let mut b = Vec::new();
            push_fixed6(&mut b, v);
            let want = format!("{v:.6}");
            // std prints "-0.000000" for negative values rounding to zero, as we do.
            assert_eq!(String::from_utf8(b).unwrap(), want, "{v:e}");
        }
    }

    #[test]
    fn npy_header_is_aligned() {
        let h = npy_header(3, 4);
        assert_eq!(h.len() % 64, 0);
        assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize + 10, h.len());
        assert!(String::from_utf8_lossy(&h).contains("'shape': (3, 4)"));
        assert_eq!(*h.last().unwrap(), b'\n');
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut b = Vec::new();
        push_csv_field(&mut b, "a,b\"c");
        assert_eq!(b, b"\"a,b\"\"c\"");
    }

    #[test]
    fn csv_formula_cells_are_neutralised() {
        let field = |s: &str| {
            let mut b = Vec::new();
            push_csv_field(&mut b, s);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(
            field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(field("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "'\tx");
        assert_eq!(field("'=x"), "''=x");
        assert_eq!(field("-1.5e3"), "-1.5e3");
        assert_eq!(field("-x"), "'-x");
        assert_eq!(field("alpha-base"), "alpha-base");
        assert_eq!(field("'plain"), "'plain");
    }
}
