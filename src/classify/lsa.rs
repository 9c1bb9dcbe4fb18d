//! Semi-supervised latent semantic features: an orthonormal basis of the top singular subspace of
//! the tf-idf matrix of the training rows plus unlabeled messages (randomized subspace iteration,
//! Halko et al. 2011). The classifier sees `gain × basisᵀ x` next to `x`; as that is linear in `x`,
//! its weights fold back into the per-bucket weights, so a model file and scoring stay unchanged.

use super::train::{SparseVec, SplitMix64};

/// Basis of the top `dims`-dimensional right singular subspace, over the buckets that occur.
#[derive(Debug, Clone)]
pub struct Projection {
    /// Row of each bucket in `basis` (`u32::MAX` = bucket absent from the corpus).
    index: Vec<u32>,
    /// `rows × dims`, row-major.
    basis: Vec<f32>,
    pub dims: usize,
}

/// Orthonormalize the `cols` columns of a row-major `rows × cols` matrix in place (Cholesky QR
/// with a tiny ridge, so a rank-deficient matrix stays finite).
fn orthonormalize(m: &mut [f32], cols: usize) {
    let mut g = vec![0f64; cols * cols];
    for row in m.chunks_exact(cols) {
        for a in 0..cols {
            let ra = row[a] as f64;
            if ra == 0.0 {
                continue;
            }
            for (gg, &rb) in g[a * cols + a..(a + 1) * cols].iter_mut().zip(&row[a..]) {
                *gg += ra * rb as f64;
            }
        }
    }
    let trace: f64 = (0..cols).map(|a| g[a * cols + a]).sum();
    let ridge = 1e-9 * trace.max(1e-30) / cols as f64;
    // Cholesky G = L Lᵀ (L lower, stored in `l`).
    let mut l = vec![0f64; cols * cols];
    for i in 0..cols {
        for j in 0..=i {
            let mut s = g[j * cols + i]; // symmetric: upper triangle holds G
            for t in 0..j {
                s -= l[i * cols + t] * l[j * cols + t];
            }
            if i == j {
                l[i * cols + i] = (s + ridge).max(1e-30).sqrt();
            } else {
                l[i * cols + j] = s / l[j * cols + j];
            }
        }
    }
    // Each row r ← r L⁻ᵀ, i.e. solve L x = rᵀ by forward substitution.
    let mut x = vec![0f64; cols];
    for row in m.chunks_exact_mut(cols) {
        for i in 0..cols {
            let mut s = row[i] as f64;
            for t in 0..i {
                s -= l[i * cols + t] * x[t];
            }
            x[i] = s / l[i * cols + i];
        }
        for (r, v) in row.iter_mut().zip(&x) {
            *r = *v as f32;
        }
    }
}

impl Projection {
    /// Fit on `docs` (tf-idf vectors over `buckets`), `iterations` power iterations.
    pub fn fit(
        docs: &[&SparseVec],
        buckets: usize,
        dims: usize,
        iterations: usize,
        seed: u64,
    ) -> Projection {
        let mut index = vec![u32::MAX; buckets];
        let mut rows = 0usize;
        for d in docs {
            for &(b, _) in d.iter() {
                if index[b as usize] == u32::MAX {
                    index[b as usize] = rows as u32;
                    rows += 1;
                }
            }
        }
        let n = docs.len();
        let mut rng = SplitMix64(seed ^ 0x15A);
        // Z: rows × dims, start random.
        let mut z: Vec<f32> = (0..rows * dims)
            .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect();
        let mut y = vec![0f32; n * dims];
        for _ in 0..=iterations {
            // Y = X Z, orthonormalized.
            y.iter_mut().for_each(|v| *v = 0.0);
            for (i, d) in docs.iter().enumerate() {
                let yi = &mut y[i * dims..(i + 1) * dims];
                for &(b, v) in d.iter() {
                    let r = index[b as usize] as usize;
                    for (a, zz) in yi.iter_mut().zip(&z[r * dims..(r + 1) * dims]) {
                        *a += v * zz;
                    }
                }
            }
            orthonormalize(&mut y, dims);
            // Z = Xᵀ Y, orthonormalized.
            z.iter_mut().for_each(|v| *v = 0.0);
            for (i, d) in docs.iter().enumerate() {
                let yi = &y[i * dims..(i + 1) * dims];
                for &(b, v) in d.iter() {
                    let r = index[b as usize] as usize;
                    for (a, yy) in z[r * dims..(r + 1) * dims].iter_mut().zip(yi) {
                        *a += v * yy;
                    }
                }
            }
            orthonormalize(&mut z, dims);
        }
        Projection {
            index,
            basis: z,
            dims,
        }
    }

    /// The same subspace with every coordinate multiplied by `gain`.
    pub fn scaled(mut self, gain: f32) -> Projection {
        self.basis.iter_mut().for_each(|v| *v *= gain);
        self
    }

    /// A projection on given directions: `rows` yields (bucket, one value per dimension), e.g. a
    /// prior model's class weights, so that `project(x)` is that model's margins without bias.
    pub fn from_rows<'a>(
        buckets: usize,
        dims: usize,
        rows: impl Iterator<Item = (usize, &'a [f32])>,
    ) -> Projection {
        let mut index = vec![u32::MAX; buckets];
        let mut basis = Vec::new();
        let mut n = 0u32;
        for (b, r) in rows {
            if b < buckets && r.len() == dims && index[b] == u32::MAX {
                index[b] = n;
                n += 1;
                basis.extend_from_slice(r);
            }
        }
        Projection { index, basis, dims }
    }

    /// Both subspaces side by side (`self`'s coordinates first).
    pub fn stack(&self, other: &Projection) -> Projection {
        let buckets = self.index.len().max(other.index.len());
        let dims = self.dims + other.dims;
        fn row(p: &Projection, b: usize) -> Option<&[f32]> {
            let r = *p.index.get(b)?;
            (r != u32::MAX).then(|| &p.basis[r as usize * p.dims..(r as usize + 1) * p.dims])
        }
        let mut index = vec![u32::MAX; buckets];
        let mut basis = Vec::new();
        let mut n = 0u32;
        for (b, slot) in index.iter_mut().enumerate() {
            let (a, o) = (row(self, b), row(other, b));
            if a.is_none() && o.is_none() {
                continue;
            }
            *slot = n;
            n += 1;
            match a {
                Some(a) => basis.extend_from_slice(a),
                None => basis.extend(std::iter::repeat_n(0f32, self.dims)),
            }
            match o {
                Some(o) => basis.extend_from_slice(o),
                None => basis.extend(std::iter::repeat_n(0f32, other.dims)),
            }
        }
        Projection { index, basis, dims }
    }

    /// `basisᵀ x`: the coordinates of `x` in the subspace.
    pub fn project(&self, x: &SparseVec) -> Vec<f32> {
        let mut z = vec![0f32; self.dims];
        for &(b, v) in x {
            let r = self.index.get(b as usize).copied().unwrap_or(u32::MAX);
            if r != u32::MAX {
                let row = &self.basis[r as usize * self.dims..(r as usize + 1) * self.dims];
                for (a, p) in z.iter_mut().zip(row) {
                    *a += v * p;
                }
            }
        }
        z
    }

    /// `gain × basisᵀ x` appended to `x` as buckets `buckets..buckets + dims`.
    pub fn augment(&self, x: &SparseVec, buckets: usize, gain: f32) -> SparseVec {
        let z = self.project(x);
        let mut out = x.clone();
        out.extend(
            z.iter()
                .enumerate()
                .map(|(j, &v)| ((buckets + j) as u32, v * gain)),
        );
        out
    }

    /// Weights over `buckets + dims` features (`w[f * k + class]`) → weights over the buckets.
    pub fn fold(&self, w: &[f32], buckets: usize, k: usize, gain: f32) -> Vec<f32> {
        let mut out = w[..buckets * k].to_vec();
        let u = &w[buckets * k..];
        for b in 0..buckets {
            let r = self.index.get(b).copied().unwrap_or(u32::MAX);
            if r == u32::MAX {
                continue;
            }
            let row = &self.basis[r as usize * self.dims..(r as usize + 1) * self.dims];
            let o = &mut out[b * k..(b + 1) * k];
            for (j, p) in row.iter().enumerate() {
                for (oo, uu) in o.iter_mut().zip(&u[j * k..(j + 1) * k]) {
                    *oo += gain * p * uu;
                }
            }
        }
        out
    }
}
