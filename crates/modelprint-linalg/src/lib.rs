//! modelprint-linalg: the linear algebra behind the vector fingerprint methods
//! (METHODS §3), on nalgebra. Matrices cross the API as row-major `f64` slices.

use nalgebra::{DMatrix, DVector};

/// Errors of this crate: modelprint's one coded error type (shape errors are E_INPUT).
pub type LinalgError = modelprint_core::Error;

fn matrix(data: &[f64], rows: usize, cols: usize) -> Result<DMatrix<f64>, LinalgError> {
    if data.len() != rows * cols {
        return Err(LinalgError::input(format!(
            "matrix data has {} values, expected {rows} × {cols}",
            data.len()
        )));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(LinalgError::input(format!(
            "matrix has a non-finite value at row {}, column {}",
            i / cols.max(1),
            i % cols.max(1)
        )));
    }
    Ok(DMatrix::from_row_slice(rows, cols, data))
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    m.transpose().as_slice().to_vec()
}

/// Moore–Penrose pseudo-inverse (SVD; singular values below `eps·max(rows, cols)·σ_max`
/// are treated as zero, as numpy.linalg.pinv does with its default rcond).
pub fn pinv(data: &[f64], rows: usize, cols: usize) -> Result<Vec<f64>, LinalgError> {
    let m = matrix(data, rows, cols)?;
    Ok(row_major(&pinv_matrix(&m)?))
}

fn pinv_matrix(m: &DMatrix<f64>) -> Result<DMatrix<f64>, LinalgError> {
    let svd = m.clone().svd(true, true);
    let smax = svd.singular_values.iter().cloned().fold(0.0f64, f64::max);
    let tol = f64::EPSILON * (m.nrows().max(m.ncols()) as f64) * smax;
    svd.pseudo_inverse(tol)
        .map_err(|e| LinalgError::input(e.to_string()))
}

/// Eigenvalues of a real square (generally non-symmetric) matrix as (re, im) pairs.
pub fn eigenvalues(data: &[f64], n: usize) -> Result<Vec<(f64, f64)>, LinalgError> {
    let m = matrix(data, n, n)?;
    Ok(m.complex_eigenvalues()
        .iter()
        .map(|c| (c.re, c.im))
        .collect())
}

/// The input_output fingerprint (METHODS §3): with V, U of shape d × N (row-major),
/// the `n0` largest |eigenvalues| of `pinv(V)·U` (N × N; same non-zero spectrum as
/// `U·pinv(V)`), in ascending order, divided by their L2 norm.
pub fn io_fingerprint(
    v: &[f64],
    u: &[f64],
    d: usize,
    n: usize,
    n0: usize,
) -> Result<Vec<f64>, LinalgError> {
    let vm = matrix(v, d, n)?;
    let um = matrix(u, d, n)?;
    let a = pinv_matrix(&vm)? * um; // N × N
    let mut mags: Vec<f64> = a.complex_eigenvalues().iter().map(|c| c.norm()).collect();
    mags.sort_by(|x, y| y.partial_cmp(x).unwrap_or(std::cmp::Ordering::Equal));
    mags.truncate(n0);
    mags.reverse();
    Ok(normalize_l2(mags))
}

fn normalize_l2(mut v: Vec<f64>) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
    v
}

/// The `s` largest singular values of a row-major `rows × cols` f32 matrix, descending.
/// Small matrices use the Gram matrix of the smaller side; large ones a randomized
/// subspace iteration (Halko et al.) with oversampling and two power iterations.
pub fn top_singular_values(
    data: &[f32],
    rows: usize,
    cols: usize,
    s: usize,
    seed: u64,
) -> Result<Vec<f64>, LinalgError> {
    if data.len() != rows * cols {
        return Err(LinalgError::input(format!(
            "matrix data has {} values, expected {rows} × {cols}",
            data.len()
        )));
    }
    let s = s.min(rows).min(cols);
    if s == 0 {
        return Ok(Vec::new());
    }
    let small = rows.min(cols);
    if small <= 512 {
        // Gram of the smaller side: eigenvalues are σ².
        let gram = gram_small_side(data, rows, cols);
        let eig = gram.symmetric_eigen();
        let mut sv: Vec<f64> = eig.eigenvalues.iter().map(|x| x.max(0.0).sqrt()).collect();
        sv.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
        sv.truncate(s);
        return Ok(sv);
    }
    let r = (s + 10).min(small);
    let mut rng = seed | 1;
    let mut next = || {
        // xorshift64*, mapped to [-1, 1)
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        (rng.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    let omega = DMatrix::from_fn(cols, r, |_, _| next());
    let a = DMatrix::from_row_slice(
        rows,
        cols,
        &data.iter().map(|&x| x as f64).collect::<Vec<_>>(),
    );
    let mut q = (&a * omega).qr().q();
    for _ in 0..2 {
        let z = (a.transpose() * &q).qr().q();
        q = (&a * z).qr().q();
    }
    let b = q.transpose() * &a; // r × cols
    let mut sv: Vec<f64> = b
        .svd(false, false)
        .singular_values
        .iter()
        .cloned()
        .collect();
    sv.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
    sv.truncate(s);
    Ok(sv)
}

fn gram_small_side(data: &[f32], rows: usize, cols: usize) -> DMatrix<f64> {
    if cols <= rows {
        // AᵀA (cols × cols), accumulated row by row.
        let mut g = DMatrix::<f64>::zeros(cols, cols);
        for r in 0..rows {
            let row = DVector::from_iterator(
                cols,
                data[r * cols..(r + 1) * cols].iter().map(|&x| x as f64),
            );
            g.ger(1.0, &row, &row, 1.0);
        }
        g
    } else {
        let m = DMatrix::from_row_slice(
            rows,
            cols,
            &data.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        );
        &m * m.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn pinv_of_known_matrices() {
        // Invertible: pinv = inverse. [[4,7],[2,6]]⁻¹ = [[0.6,-0.7],[-0.2,0.4]]
        let p = pinv(&[4.0, 7.0, 2.0, 6.0], 2, 2).unwrap();
        for (x, y) in p.iter().zip([0.6, -0.7, -0.2, 0.4]) {
            assert!(close(*x, y, 1e-12), "{p:?}");
        }
        // Rank-deficient column vector [1,2,2]ᵀ: pinv = [1,2,2]/9.
        let p = pinv(&[1.0, 2.0, 2.0], 3, 1).unwrap();
        for (x, y) in p.iter().zip([1.0 / 9.0, 2.0 / 9.0, 2.0 / 9.0]) {
            assert!(close(*x, y, 1e-12));
        }
        // Singular 2×2 [[1,2],[2,4]]: pinv = A / 25.
        let p = pinv(&[1.0, 2.0, 2.0, 4.0], 2, 2).unwrap();
        for (x, y) in p.iter().zip([0.04, 0.08, 0.08, 0.16]) {
            assert!(close(*x, y, 1e-12), "{p:?}");
        }
    }

    #[test]
    fn eigenvalues_of_non_symmetric_matrices() {
        // [[2,1],[0,3]]: 2 and 3.
        let mut e = eigenvalues(&[2.0, 1.0, 0.0, 3.0], 2).unwrap();
        e.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        assert!(close(e[0].0, 2.0, 1e-10) && close(e[1].0, 3.0, 1e-10));
        // Rotation by 90°: ±i.
        let e = eigenvalues(&[0.0, -1.0, 1.0, 0.0], 2).unwrap();
        for (re, im) in e {
            assert!(close(re, 0.0, 1e-10) && close(im.abs(), 1.0, 1e-10));
        }
        // [[1,2],[3,4]]: (5 ± √33) / 2.
        let mut e: Vec<f64> = eigenvalues(&[1.0, 2.0, 3.0, 4.0], 2)
            .unwrap()
            .iter()
            .map(|c| c.0)
            .collect();
        e.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert!(close(e[0], (5.0 - 33f64.sqrt()) / 2.0, 1e-10));
        assert!(close(e[1], (5.0 + 33f64.sqrt()) / 2.0, 1e-10));
    }

    #[test]
    fn io_fingerprint_matches_the_definition() {
        // V = I (2×2), U = [[2,1],[0,3]] → pinv(V)·U = U, |eig| = {2,3} → [2,3]/√13.
        let f = io_fingerprint(&[1.0, 0.0, 0.0, 1.0], &[2.0, 1.0, 0.0, 3.0], 2, 2, 40).unwrap();
        assert_eq!(f.len(), 2);
        assert!(close(f[0], 2.0 / 13f64.sqrt(), 1e-10) && close(f[1], 3.0 / 13f64.sqrt(), 1e-10));
        // n0 = 1 keeps the largest.
        let f = io_fingerprint(&[1.0, 0.0, 0.0, 1.0], &[2.0, 1.0, 0.0, 3.0], 2, 2, 1).unwrap();
        assert_eq!(f, vec![1.0]);
    }

    #[test]
    fn singular_values_of_known_matrices() {
        // diag(3, 2, 1) padded to 4×3.
        let a: Vec<f32> = vec![3.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let s = top_singular_values(&a, 4, 3, 2, 1).unwrap();
        assert!(close(s[0], 3.0, 1e-9) && close(s[1], 2.0, 1e-9), "{s:?}");
        // Randomized path on a large rank-2 matrix: σ = 30·√(rows·cols)… check against the Gram path.
        let (rows, cols) = (700, 600);
        let mut a = vec![0f32; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                let x = ((i * 7 + j * 13) % 17) as f32 / 17.0;
                let y = ((i * 3 + j * 5) % 11) as f32 / 11.0;
                a[i * cols + j] = x + 0.5 * y;
            }
        }
        let fast = top_singular_values(&a, rows, cols, 3, 7).unwrap();
        let m =
            DMatrix::from_row_slice(rows, cols, &a.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let exact: Vec<f64> = {
            let mut v: Vec<f64> = m
                .svd(false, false)
                .singular_values
                .iter()
                .cloned()
                .collect();
            v.sort_by(|a, b| b.partial_cmp(a).unwrap());
            v
        };
        for k in 0..3 {
            assert!(
                (fast[k] - exact[k]).abs() / exact[k] < 1e-6,
                "{fast:?} vs {:?}",
                &exact[..3]
            );
        }
    }

    #[test]
    fn bad_shapes_and_values_are_errors() {
        assert!(pinv(&[1.0, 2.0], 2, 2).is_err());
        assert!(eigenvalues(&[f64::NAN], 1).is_err());
        assert!(top_singular_values(&[1.0; 5], 2, 2, 1, 0).is_err());
    }
}
