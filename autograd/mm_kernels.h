/* agrad's own matrix product kernels, shared by autograd/linalg.c, the benchmark (which
 * times them called directly) and tests/test_linalg.c (which checks them bit for bit
 * against plain scalar loops). Internal: not installed.
 *
 * Each kernel adds its product into c. Every element of c sums its terms one after
 * another in the order of the inner index, starting from c's value: the order of the
 * reference BLAS that Debian's PyTorch calls, so the results are PyTorch's floats. The
 * loops run over rows of c (the i-k-j form), so the innermost loop, c_row += s * x_row,
 * is independent across its elements and vectorises without changing any sum (no
 * reassociation, no -ffast-math).
 *
 * Vectorised at -O2: gcc 12 vectorises at -O2 only what its "very cheap" cost model
 * accepts, which refuses a loop of unknown length (it would need a scalar epilogue) and
 * one whose operands may overlap (it would need a run-time check). So the row runs in
 * blocks of a fixed AG__MM_W floats (a loop of known length: two SSE multiplies and adds
 * per block, `gcc -O2 -fopt-info-vec` says "loop vectorized using 16 byte vectors" for
 * ag__mm_row; `objdump -d` shows mulps/addps) plus a scalar tail, and the pointers are
 * restrict. clang vectorises the same loops at -O2 (-Rpass=loop-vectorize). */
#ifndef AGRAD_MM_KERNELS_H
#define AGRAD_MM_KERNELS_H

#include <stdint.h>

enum { AG__MM_W = 8 };

/* c[0..p) += s * x[0..p), each element one rounded product and one rounded sum. */
static inline void ag__mm_row(float *restrict c, float s, const float *restrict x, int64_t p)
{
    int64_t pw = p - p % AG__MM_W, j = 0;
    for (; j < pw; j += AG__MM_W)
        for (int w = 0; w < AG__MM_W; w++) c[j + w] += s * x[j + w];
    for (; j < p; j++) c[j] += s * x[j];
}

/* c[n,p] += a[n,k] b[k,p]: row i of c gathers rows of b scaled by a[i,l], l ascending. */
static inline void ag__mm_nn(float *restrict c, const float *restrict a, const float *restrict b,
                             int64_t n, int64_t k, int64_t p)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t l = 0; l < k; l++) ag__mm_row(c + i * p, a[i * k + l], b + l * p, p);
}

/* c[k,p] += a[n,k]^T b[n,p]: row i of b scaled by a[i,l] into row l of c, i ascending. */
static inline void ag__mm_tn(float *restrict c, const float *restrict a, const float *restrict b,
                             int64_t n, int64_t k, int64_t p)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t l = 0; l < k; l++) ag__mm_row(c + l * p, a[i * k + l], b + i * p, p);
}

/* bt[p,k] = b[k,p]^T. */
static inline void ag__mm_transpose(float *restrict bt, const float *restrict b, int64_t k,
                                    int64_t p)
{
    for (int64_t l = 0; l < k; l++)
        for (int64_t j = 0; j < p; j++) bt[j * k + l] = b[l * p + j];
}

/* c[n,k] += a[n,p] b[k,p]^T, given bt = b^T ([p,k], from ag__mm_transpose): the product
 * a bt, so that element (i, l) sums a[i,j] b[l,j] for j ascending, as the dot product of
 * the two rows would, while the loop runs along rows of c. */
static inline void ag__mm_nt(float *restrict c, const float *restrict a, const float *restrict bt,
                             int64_t n, int64_t p, int64_t k)
{
    ag__mm_nn(c, a, bt, n, p, k);
}

#endif
