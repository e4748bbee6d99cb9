// Package inspect computes statistics of a model's attention projections —
// every W_Q, W_K, W_V and W_O and every head block of them — turns them into
// findings (NaN/Inf, dead heads, rank-collapsed heads, duplicated heads,
// outlier norms), and renders the result as JSON or as a styled or plain table.
//
// Layers are streamed from a LayerSource through a bounded worker pool, so
// memory stays near workers × the largest layer whatever the model's size.
//
// # Definitions
//
// All sums are accumulated in float64 from the float32 weights.
//
// For each matrix W (q, k, v, o of every layer) and each head block (rows
// [h*hd, (h+1)*hd) of q; the n_kv_heads row blocks of k and v; columns
// [h*hd, (h+1)*hd) of o), of shape [m, n]:
//
//	fro            sqrt(Σ w²)
//	max_abs        max |w|
//	mean           Σ w / (m·n)
//	std            population standard deviation, sqrt(Σ (w-mean)² / (m·n))
//	nan_count, inf_count, zero_count (exact zeros, either sign)
//	sv             all min(m, n) singular values, descending
//	spectral_norm  sv[0]
//	rank           #{i : sv[i] > tol}, tol = sv[0]·max(m, n)·1.1920929e-07
//	               (numpy's matrix_rank rule with float32 eps); Options.RankTol
//	               > 0 replaces tol by that absolute value
//	effective_rank exp(-Σ p_i ln p_i), p = sv / Σ sv, terms with p_i = 0 skipped
//	stable_rank    fro² / sv[0]²
//	condition      sv[0] / sv[last]; null when sv[last] = 0 (flag "singular")
//	               or sv[last] < 2⁻²³·sv[0], i.e. above 1/eps32 ≈ 8.4e6
//	               (flag "ill_conditioned": the smallest value is below the
//	               float32 rounding of the largest, so the ratio would
//	               measure storage noise, not the weights)
//
// Per query head h, with g = h / (n_heads / n_kv_heads) its KV group, the
// circuits QK = W_Q^hᵀ W_K^g and OV = W_O^h W_V^g (both d_model × d_model)
// are summarised by their spectral norm and effective rank. They are never
// formed: for A, B of shape [hd, d], the singular values of AᵀB equal those
// of the hd × hd matrix R_A R_Bᵀ, where Aᵀ = Q_A R_A and Bᵀ = Q_B R_B are thin
// QR factorisations (likewise for W_O^h = Q_O R_O and W_V^gᵀ = Q_V R_V).
//
// Across the head blocks of one matrix, the pair with the largest cosine
// similarity of their flattened blocks is reported (duplicated heads).
//
// # Non-finite values
//
// NaN and Inf are counted. A matrix that holds any is reported with its
// counts, but every statistic that would be NaN or Inf (fro, max_abs, mean,
// std and all spectral statistics) is null in JSON, the spectrum is not
// computed, and the stats carry flags ("nan", "inf", "spectrum_skipped"); a
// finding of kind "nan" or "inf" is raised. No value is ever NaN or Inf in
// JSON.
//
// # How singular values are computed
//
// Only singular values, never vectors. For min(m, n) ≤ 48, or when the Gram
// route is not accurate enough, the matrix is widened to float64 and reduced
// directly (bidiagonalisation + bidiagonal QR, LAPACK's dgesvd without
// vectors, as gonum implements it). Otherwise the Gram matrix of the smaller
// side, G = W Wᵀ or Wᵀ W, is accumulated in float64 (products of float32
// values are exact in float64) and its eigenvalues λ are found by a symmetric
// eigensolver; sv = sqrt(λ). This squares the condition number: an eigenvalue
// carries an absolute error of about c·eps64·λ_max, so the relative error of
// sv_i is about c·eps64·λ_max / (2 λ_i). The Gram route is kept only when that
// estimate, with c = 4·sqrt(k) for k = min(m, n), is below 1e-5 for every
// singular value (that is, λ_min ≥ 4·sqrt(k)·eps64·λ_max / 2e-5); otherwise
// (rank-deficient or ill-conditioned matrices) the direct route is used. The
// estimate is conservative: for a 4096×4096 standard normal matrix
// (condition 9.7e3) it gives 2.7e-6 where the measured largest error
// against numpy's float64 SVD is 1.3e-8; for 1024×4096 1.3e-13 vs 1.1e-14.
// For min(m, n) ≥ 512, where the direct route is costly, MatrixStats also
// keeps a Gram spectrum whose only unresolved values (estimate above 1e-5)
// lie below the rank threshold — which holds whenever sv[0]·sqrt(2·sqrt(k)·
// eps64/1e-5) < tol, true for every k ≥ 512 at the default tol. Rank is then
// still exact and every value above the threshold accurate, but the values
// below it (rounding noise of the stored matrix, e.g. the zero singular
// values of a matrix with a dead head) are resolved only to about
// 1e-7·sv[0] absolute: the stats carry the flags "sv_tail_approximate" and
// "effective_rank_approximate" (effective_rank sums those values: 4e-5
// relative off on the shared MLX adapter's rank-8 updates formed as
// matrices; inspect takes adapters from their factors, exactly) and
// condition is null. SingularValues itself never does this, nor does a run
// with Options.ESD. Otherwise rank is exact in both routes. The numerics
// live in internal/linalg: the Gram matrix is its packed, register-tiled
// product (AVX2/FMA kernel on amd64) on all CPUs; its eigenvalues come from
// linalg's blocked Householder tridiagonalisation (rank-2k updates through
// the same product, symmetric matrix-vector products split across CPUs in
// 8 parts)
// and Pal–Walker–Kahan QR (gonum's Dsterf). Every sum is split into a
// fixed number of parts, whatever the number of CPUs, so the statistics
// are bit for bit the same at any GOMAXPROCS.
//
// # LoRA updates
//
// A LoRA update ΔW = scale·B·A (A [r, in], B [out, r]) has rank at most r,
// and its singular values follow exactly from the factors: with thin QR
// factorisations B = Q_B R_B and Aᵀ = Q_A R_A, they are |scale| times those
// of the r×r matrix R_B R_Aᵀ. An adapter's layers carry their factors
// (formats.Layer.LoRA, in PEFT's orientation, B's rows those of a fused
// update's split), and every LoRA projection is analysed from them (method
// "factors"): the spectrum exact — singular values past the rank are
// exactly zero, so condition is null with the flag "singular" — in about
// 2r²(out + in) flops instead of a decomposition of the out×in matrix, and
// without the float32 noise tail that makes a materialised ΔW's effective
// rank approximate and its condition a ratio to rounding noise. Head
// blocks are B's row blocks times A (q, k, v) or B times A's column blocks
// (o), so each head's spectrum comes from its own factors, and the most
// similar pair of heads from inner products of the factors (r×r Gram
// matrices). Element statistics are those of ΔW rounded to float32, bit
// for bit as `extract` writes it; through FromFactors (formats.Model's
// LoadLayerFactors) ΔW is formed 64 rows at a time, twice (the mean, then
// the deviations), and never held whole: an update of a 4096-wide model
// needs 1 MiB of rows and 2 MiB of float64 scratch instead of 64 MiB.
//
// # Heavy-tail metrics
//
// With Options.ESD every matrix (q, k, v, o; not head blocks) gains an esd
// object: WeightWatcher's heavy-tail family (WeightWatcher 0.7.5.5, the
// defaults of analyze()), computed by package esd from all min(m, n)
// singular values in float64 (its documentation has every definition).
// λ_i = σ_i². Power-law fit: the fitted eigenvalues x_0 ≤ … ≤ x_{K−1} are
// the λ above 1e-5; every x_i but the largest is a candidate xmin;
// α_i = 1 + n_i / Σ_{j≥i} ln(x_j/x_i), D_i = max_{k<n_i} |1 − (x_{i+k}/x_i)^(1−α_i) − k/n_i|;
// the fit is the candidate with the smallest D (smallest xmin on a tie).
// alpha, D, xmin, xmin_index, xmax = λ_max, num_pl_spikes = #{λ ≥ xmin},
// sigma = (α − 1)/√(K − xmin_index). Refused (status "failed", reason,
// α-dependent fields null) when fewer than two eigenvalues exceed 1e-5 or
// the best tail is all equal. warning "over-trained" (α < AlphaLow,
// default 2) / "under-trained" (α > AlphaHigh, default 6). Norm metrics
// over all eigenvalues: norm = Σλ = ‖W‖_F², log_norm, spectral_norm =
// λ_max, log_spectral_norm, alpha_weighted = α·log10 λ_max, log_alpha_norm
// = log10 Σλ^α, stable_rank = Σλ/λ_max, matrix_rank (float64 eps rule),
// entropy = −Σ p_i ln p_i / ln(matrix_rank + 1e-10) with p_i = λ_i/Σλ +
// 1e-10. The Marchenko–Pastur fit is not computed.
//
// The values the metrics use are exact: a matrix whose Gram spectrum
// would carry sv_tail_approximate is decomposed directly instead (about 4×
// the time of the Gram route for a 4096² matrix; only rank-deficient
// matrices of side ≥ 512 take it), and LoRA updates use their exact
// spectrum from the factors. Fast mode, which computes only the leading
// singular values, cannot be combined with them (ErrESDFast). A matrix
// with NaN or Inf has no esd object (spectrum_skipped); an all-zero one has
// none and the flag "esd_zero_matrix". Findings: alpha_low (α < AlphaLow)
// and alpha_high (α > AlphaHigh) for each fitted matrix.
//
// # Fast mode
//
// Options.Fast skips full spectra of matrices with min(m, n) > 160 (smaller
// ones, such as head blocks, are cheap and get the full treatment). It runs
// block Lanczos: a Krylov space of AᵀA spanned by 5 blocks of 32 vectors
// from a fixed pseudo-random start, orthonormalised in full, and
// Rayleigh–Ritz on A over it, giving Ritz values θ_1 ≥ θ_2 ≥ … (each at most
// the corresponding singular value). For each leading Ritz vector y the
// residual ρ = ‖AᵀA y − θ² y‖ bounds a true singular value in
// [θ, sqrt(θ² + ρ)]; both ends are reported for the spectral norm
// (spectral_norm = θ_1, spectral_norm_bounds). stable_rank = fro² / θ_1²
// (fro is exact, so stable_rank is an upper estimate within the same
// bracket squared).
//
// Effective rank: the leading t ≤ 64 Ritz values whose bracket is within
// 1e-4 relative are taken as the head of the spectrum; the k − t unknown
// tail values satisfy Σ tail² = fro² − Σ θ_i² (exact energy) and
// 0 ≤ tail_j ≤ sqrt(θ_t² + ρ_t). effective_rank_bounds = [lo, hi] are the
// effective ranks of the two extreme admissible tails — energy packed into
// as few values at the cap as possible (lo) and spread evenly over all
// k − t (hi); the true value lies between them (exhaustively checked on
// random admissible tails in the tests) when the head is right.
// effective_rank is their geometric mean, so its relative error is at most
// sqrt(hi/lo) − 1. The bracket is tight for decaying spectra (trained
// weights) and wide for flat ones (a 4096² Gaussian gives about [1000,
// 4096]). rank and condition are null in fast mode (they need the whole
// spectrum).
//
// # Findings
//
// With default thresholds (all are Options): nan / inf when a matrix holds
// any; dead_head when a head's fro is below 1e-6 × the median head fro of its
// matrix; rank_collapsed when a head's effective_rank is below 10% of
// min(m, n); duplicate_heads when two blocks of one matrix have cosine
// similarity above 0.99; outlier_norm when a matrix's spectral_norm exceeds
// 5 × the median spectral_norm of that projection kind across layers; with
// Options.ESD, alpha_low and alpha_high when a matrix's fitted α is below 2
// or above 6.
package inspect
