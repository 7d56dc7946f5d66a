/* Matrix products, transposition and the inverse. Each op keeps its forward and its
 * backward side by side.
 *
 * Products accumulate in float, one term after another in the order of the inner
 * index: the order of the reference BLAS that Debian's PyTorch calls (sgemm, sgemv,
 * sdot) and of its small-batch bmm kernel, so results are the same floats as
 * PyTorch's (mm_kernels.h: the kernels, vectorised). With -Dblas=openblas, matmul calls
 * cblas_sgemm instead, whose sums run in their own order. The inverse is computed in
 * double. */
#include "internal.h"
#include "mm_kernels.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* Kernels: agrad's own in mm_kernels.h, vectorised, with PyTorch's floats. Each adds    */
/* its product into c, so that gradients of broadcast batches sum into one buffer as     */
/* they are produced (in the order PyTorch's folded products sum).                       */
/* With -Dblas=openblas (AG_HAVE_BLAS), matmul calls cblas_sgemm instead: faster, and    */
/* its sums run in OpenBLAS's order, so the last bits differ from PyTorch's.             */

#ifdef AG_HAVE_BLAS
#include <cblas.h>
#include <limits.h>

/* c[m,nc] = op(x) op(y) + beta c, op(x) of [m,kk] and op(y) of [kk,nc], all row-major and
 * contiguous: x stored [m,kk], or [kk,m] when tx; y stored [kk,nc], or [nc,kk] when ty. */
static void sgemm(bool tx, bool ty, int64_t m, int64_t nc, int64_t kk, const float *x,
                  const float *y, float beta, float *c)
{
    int64_t lx = tx ? m : kk, ly = ty ? kk : nc;
    cblas_sgemm(CblasRowMajor, tx ? CblasTrans : CblasNoTrans, ty ? CblasTrans : CblasNoTrans,
                (int)m, (int)nc, (int)kk, 1.0f, x, (int)(lx > 1 ? lx : 1), y,
                (int)(ly > 1 ? ly : 1), beta, c, (int)(nc > 1 ? nc : 1));
}
#endif

/* ------------------------------------------------------------------------------------ */
/* matmul: C = A B                         dA = G B^T, dB = A^T G                        */
/* A 1-D a is a row [1, k], a 1-D b a column [k, 1], and the added dimension is dropped  */
/* from the result. Dimensions before the last two are batch dimensions: they broadcast, */
/* and the gradient of a broadcast operand is summed over them.                          */

/* What a @ b multiplies: per batch, a [n, k] by b [k, p]. */
typedef struct mm_plan {
    int op;               /* AG__OP_DOT, _MV, _VM, _MM, _MATMUL_VIEW or _MATMUL_CLONE */
    int64_t n, k, p;      /* the matrices of one batch */
    int64_t nb[2];        /* the broadcast batch shape, padded to two dimensions */
    int64_t sa[2], sb[2]; /* a's and b's strides over it, in matrices (0: broadcast) */
    int ndim;             /* the result's shape */
    int64_t shape[AG_MAX_DIMS];
} mm_plan;

static int64_t prod(const int64_t *d, int n)
{
    int64_t r = 1;
    for (int i = 0; i < n; i++) r *= d[i];
    return r;
}

/* The message for inner sizes that differ, in the words of the PyTorch kernel that
 * torch.matmul reaches for these ranks: mm, mv and dot for matrices and vectors; for a
 * batched operand against a matrix or vector, PyTorch folds the batch into the rows of
 * one mm or mv (transposing both sides when the batch is on the right), so its message
 * shows the folded sizes; the original shapes follow in that case. */
static void mismatch_error(const ag_tensor *a, const ag_tensor *b, const mm_plan *pl, int64_t kb)
{
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    int da = a->ndim, db = b->ndim;
    int64_t ka = pl->k;
    ag__tensor_str(s1, a);
    ag__tensor_str(s2, b);
    if (da == 1 && db == 1) {
        ag__error("matmul: inconsistent tensor size, expected tensor [%lld] and src [%lld] to "
                  "have the same number of elements, but got %lld and %lld elements respectively",
                  (long long)ka, (long long)kb, (long long)ka, (long long)kb);
    } else if (da == 2 && db == 2) {
        ag__error("matmul: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and %lldx%lld)",
                  (long long)pl->n, (long long)ka, (long long)kb, (long long)pl->p);
    } else if (da <= 2 && db <= 2) { /* [n, k] @ [k] is mv; [k] @ [k, p] is [1, k] @ [k, p] */
        if (db == 1)
            ag__error("matmul: size mismatch, got %lld, %lldx%lld,%lld (shapes %s and %s)",
                      (long long)pl->n, (long long)pl->n, (long long)ka, (long long)kb, s1, s2);
        else
            ag__error("matmul: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and "
                      "%lldx%lld) (shapes %s and %s)",
                      (long long)pl->n, (long long)ka, (long long)kb, (long long)pl->p, s1, s2);
    } else if (db <= 2) { /* a folded to [rows, k] */
        int64_t rows = prod(a->shape, da - 1);
        if (db == 1)
            ag__error("matmul: size mismatch, got %lld, %lldx%lld,%lld (shapes %s and %s)",
                      (long long)rows, (long long)rows, (long long)ka, (long long)kb, s1, s2);
        else
            ag__error("matmul: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and "
                      "%lldx%lld) (shapes %s and %s)",
                      (long long)rows, (long long)ka, (long long)kb, (long long)pl->p, s1, s2);
    } else if (da <= 2) { /* b^T folded to [rows, k] times a^T */
        int64_t rows = prod(b->shape, db - 2) * pl->p;
        if (da == 1)
            ag__error("matmul: size mismatch, got %lld, %lldx%lld,%lld (shapes %s and %s)",
                      (long long)rows, (long long)rows, (long long)kb, (long long)ka, s1, s2);
        else
            ag__error("matmul: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and "
                      "%lldx%lld) (shapes %s and %s)",
                      (long long)rows, (long long)kb, (long long)ka, (long long)pl->n, s1, s2);
    } else { /* bmm of the expanded batches */
        int64_t nb = pl->nb[0] * pl->nb[1];
        ag__error("matmul: Expected size for first two dimensions of batch2 tensor to be: "
                  "[%lld, %lld] but got: [%lld, %lld]. (shapes %s and %s)",
                  (long long)nb, (long long)ka, (long long)nb, (long long)kb, s1, s2);
    }
}

/* Fills pl for a @ b; false after an error. */
static bool mm_plan_make(const ag_tensor *a, const ag_tensor *b, mm_plan *pl)
{
    char s1[AG__SHAPE_STR], s2[AG__SHAPE_STR];
    int da = a->ndim, db = b->ndim;
    if (da == 0 || db == 0) {
        ag__error("matmul: both arguments to matmul need to be at least 1D, but they are "
                  "%dD and %dD",
                  da, db);
        return false;
    }
    memset(pl, 0, sizeof *pl);
    pl->n = da == 1 ? 1 : a->shape[da - 2];
    pl->k = a->shape[da - 1];
    pl->p = db == 1 ? 1 : b->shape[db - 1];
    int64_t kb = db == 1 ? b->shape[0] : b->shape[db - 2];

    /* Batch shapes, padded on the left to two dimensions. */
    int ba = da > 2 ? da - 2 : 0, bb = db > 2 ? db - 2 : 0, nbatch = ba > bb ? ba : bb;
    int64_t pa[2], pb[2];
    for (int i = 0; i < 2; i++) {
        int ja = i - (2 - ba), jb = i - (2 - bb);
        pa[i] = ja >= 0 ? a->shape[ja] : 1;
        pb[i] = jb >= 0 ? b->shape[jb] : 1;
        if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1) {
            ag__error("matmul: The size of tensor a (%lld) must match the size of tensor "
                      "b (%lld) at non-singleton dimension %d (shapes %s and %s)",
                      (long long)pa[i], (long long)pb[i], i - (2 - nbatch), ag__tensor_str(s1, a),
                      ag__tensor_str(s2, b));
            return false;
        }
        pl->nb[i] = pa[i] == 1 ? pb[i] : pa[i];
    }
    pl->sa[1] = pa[1] == 1 ? 0 : 1;
    pl->sa[0] = pa[0] == 1 ? 0 : pa[1];
    pl->sb[1] = pb[1] == 1 ? 0 : 1;
    pl->sb[0] = pb[0] == 1 ? 0 : pb[1];

    for (int i = 0; i < nbatch; i++) pl->shape[pl->ndim++] = pl->nb[2 - nbatch + i];
    if (da > 1) pl->shape[pl->ndim++] = pl->n;
    if (db > 1) pl->shape[pl->ndim++] = pl->p;
    /* The result's shape first: broadcast batches of two empty operands can overflow, and
     * every product below (in the messages too) is then bounded by a valid shape. */
    if (ag__numel("matmul", pl->ndim, pl->shape) < 0) return false;
    if (pl->k != kb) {
        mismatch_error(a, b, pl, kb);
        return false;
    }
    if (da > 2 || db > 2)
        pl->op = da == 2 ? AG__OP_MATMUL_CLONE : AG__OP_MATMUL_VIEW;
    else
        pl->op = da == 1 ? (db == 1 ? AG__OP_DOT : AG__OP_VM) : (db == 1 ? AG__OP_MV : AG__OP_MM);
    return true;
}

/* Runs BODY for each batch with ia, ib, io the offsets (in matrices) of a's, b's and
 * the result's matrices. */
#define FOR_BATCH(pl, BODY)                                                                        \
    for (int64_t i0 = 0; i0 < (pl).nb[0]; i0++)                                                    \
        for (int64_t i1 = 0; i1 < (pl).nb[1]; i1++) {                                              \
            int64_t ia = i0 * (pl).sa[0] + i1 * (pl).sa[1];                                        \
            int64_t ib = i0 * (pl).sb[0] + i1 * (pl).sb[1];                                        \
            int64_t io = i0 * (pl).nb[1] + i1;                                                     \
            BODY;                                                                                  \
        }

/* The gradient of one batch: d += x y^T (of a: g b^T, which runs as g (b^T) with b's
 * matrices transposed once beforehand) or d += x^T y (of b: a^T g, ag__mm_tn), size
 * floats. Where an operand was broadcast, several batches add into the same d. PyTorch
 * sums them in two ways: with one operand of rank <= 2 it folds the batches into one
 * product, whose sums run on across batches (tmp NULL here); with both batched it makes
 * each batch's product (bmm), then sums the batches (sum_to_size), which tmp reproduces.
 * Either way the floats match. */
typedef void (*kernel)(float *restrict c, const float *restrict x, const float *restrict y, int64_t,
                       int64_t, int64_t);
static void grad_batch(kernel mm, float *d, float *tmp, int64_t size, const float *x,
                       const float *y, int64_t n1, int64_t n2, int64_t n3)
{
    if (tmp) memset(tmp, 0, (size_t)size * sizeof *tmp);
    mm(tmp ? tmp : d, x, y, n1, n2, n3);
    for (int64_t i = 0; tmp && i < size; i++) d[i] += tmp[i];
}

#ifdef AG_HAVE_BLAS
/* Whether cblas_sgemm's int sizes hold this product, its batches folded into rows too. */
static bool blas_fits(const mm_plan *pl)
{
    int64_t rows = pl->nb[0] * pl->nb[1] * pl->n;
    return rows <= INT_MAX && pl->k <= INT_MAX && pl->p <= INT_MAX;
}

/* With BLAS: each gradient is one sgemm per batch, or one in all where a batched a meets
 * an unbatched b (the batches folded into rows, as PyTorch does), added (beta 1) straight
 * into the gradient the engine accumulates for the input (ag__grad_of): no buffer of its
 * own, no pass to add it. */
static void blas_backward(const mm_plan *pl, ag_tensor *a, ag_tensor *b, const float *g,
                          bool want_a, bool want_b)
{
    int64_t n = pl->n, k = pl->k, p = pl->p, nbat = pl->nb[0] * pl->nb[1];
    float *da = want_a ? ag__grad_of(a) : NULL, *db = want_b ? ag__grad_of(b) : NULL;
    if ((want_a && !da) || (want_b && !db)) return;
    if (b->ndim <= 2) { /* b unbatched: a's batches are rows */
        if (da) sgemm(false, true, nbat * n, k, p, g, b->data, 1.0f, da);
        if (db) sgemm(true, false, k, p, nbat * n, a->data, g, 1.0f, db);
        return;
    }
    FOR_BATCH(*pl, {
        if (da)
            sgemm(false, true, n, k, p, g + io * n * p, b->data + ib * k * p, 1.0f,
                  da + ia * n * k);
        if (db)
            sgemm(true, false, k, p, n, a->data + ia * n * k, g + io * n * p, 1.0f,
                  db + ib * k * p);
    });
}
#endif

void ag__matmul_backward(ag_tensor *out)
{
    ag_tensor *a = node(out)->src[0], *b = node(out)->src[1];
    const float *g = node(out)->gbuf;
    mm_plan pl;
    if (!mm_plan_make(a, b, &pl)) return;
    int64_t n = pl.n, k = pl.k, p = pl.p;
    /* An empty G (or p == 0) adds nothing; an empty input has no gradient to fill. */
    bool nothing = out->numel == 0 || p == 0;
    bool want_a = ag__wants(out, 0) && a->numel > 0, want_b = ag__wants(out, 1) && b->numel > 0;
#ifdef AG_HAVE_BLAS
    if (!nothing && blas_fits(&pl)) {
        blas_backward(&pl, a, b, g, want_a, want_b);
        return;
    }
#endif
    float *da = want_a ? ag__scratch_floats(a->numel) : NULL;
    float *db = want_b ? ag__scratch_floats(b->numel) : NULL;
    if ((want_a && !da) || (want_b && !db)) return;
    float *tmp = NULL;
    if (a->ndim > 2 && b->ndim > 2 && !nothing) {
        tmp = ag__scratch_floats(n * k > k * p ? n * k : k * p);
        if (!tmp) return;
    }
    if (da) {
        memset(da, 0, (size_t)a->numel * sizeof *da);
        if (!nothing) {
            /* G B^T as G (B^T): each of b's matrices transposed once, into scratch, so that
             * the product runs along rows (ag__mm_nt). */
            float *bt = ag__scratch_floats(b->numel);
            if (!bt) return;
            for (int64_t off = 0; off < b->numel; off += k * p)
                ag__mm_transpose(bt + off, b->data + off, k, p);
            FOR_BATCH(pl, grad_batch(ag__mm_nt, da + ia * n * k, tmp, n * k, g + io * n * p,
                                     bt + ib * k * p, n, p, k));
        }
        ag__add_grad(a, da);
    }
    if (db) {
        memset(db, 0, (size_t)b->numel * sizeof *db);
        if (out->numel > 0)
            FOR_BATCH(pl, grad_batch(ag__mm_tn, db + ib * k * p, tmp, k * p, a->data + ia * n * k,
                                     g + io * n * p, n, k, p));
        ag__add_grad(b, db);
    }
}

/* out = a @ b by the plan. An empty result, or k == 0 (zeros), costs nothing whatever the
 * batch sizes. */
static void matmul_into(ag_tensor *out, const ag_tensor *a, const ag_tensor *b, const mm_plan *pl)
{
    int64_t n = pl->n, k = pl->k, p = pl->p;
#ifdef AG_HAVE_BLAS
    if (out->numel > 0 && k > 0 && blas_fits(pl)) {
        /* One sgemm per batch, or one in all for a batched a and an unbatched b. */
        if (b->ndim <= 2)
            sgemm(false, false, pl->nb[0] * pl->nb[1] * n, p, k, a->data, b->data, 0.0f, out->data);
        else
            FOR_BATCH((*pl), sgemm(false, false, n, p, k, a->data + ia * n * k,
                                   b->data + ib * k * p, 0.0f, out->data + io * n * p));
        return;
    }
#endif
    memset(out->data, 0, (size_t)out->numel * sizeof *out->data);
    if (out->numel > 0 && k > 0)
        FOR_BATCH((*pl), ag__mm_nn(out->data + io * n * p, a->data + ia * n * k,
                                   b->data + ib * k * p, n, k, p));
}
bool ag__matmul_forward(ag_tensor *y)
{
    mm_plan pl;
    const ag_tensor *a = node(y)->src[0], *b = node(y)->src[1];
    if (!mm_plan_make(a, b, &pl)) return false; /* the shapes, checked when recorded */
    matmul_into(y, a, b, &pl);
    return true;
}

ag_tensor *ag_matmul(const ag_tensor *a, const ag_tensor *b)
{
    if (!ag__check(a, "matmul", "self") || !ag__check(b, "matmul", "other")) return NULL;
    mm_plan pl;
    if (!mm_plan_make(a, b, &pl)) return NULL;
    ag_tensor *out = ag__new("matmul", pl.ndim, pl.shape, NULL, NULL);
    if (!out) return NULL;
    matmul_into(out, a, b, &pl);
    return ag__record(out, pl.op, a, b);
}

/* ------------------------------------------------------------------------------------ */
/* transpose: y = x with dimensions d0 and d1 swapped (a copy)                           */
/*                                         dx = G with the same dimensions swapped back  */
/* t() is transpose(0, 1) for a matrix and a copy of a vector or a scalar, which         */
/* PyTorch records too (TBackward0).                                                     */

/* dst = src (of rank ndim and shape shape) with dimensions d0 and d1 swapped; with add,
 * dst += that. */
static void swap_dims(float *dst, const float *src, int ndim, const int64_t *shape, int d0, int d1,
                      bool add)
{
    int64_t p[AG_MAX_DIMS], st[AG_MAX_DIMS], s = 1;
    ag__pad(ndim, shape, p);
    for (int i = AG_MAX_DIMS - 1; i >= 0; i--) {
        st[i] = s;
        s *= p[i];
    }
    /* Reading src through swapped sizes and strides walks it in dst's order. A scalar
     * has nothing to swap (its dims are 0 and 0). */
    if (ndim > 0) {
        int e0 = d0 + AG_MAX_DIMS - ndim, e1 = d1 + AG_MAX_DIMS - ndim;
        int64_t tp = p[e0], ts = st[e0];
        p[e0] = p[e1], st[e0] = st[e1];
        p[e1] = tp, st[e1] = ts;
    }
    int64_t o = 0;
    if (!p[0] || !p[1] || !p[2] || !p[3]) return; /* empty: nothing to move, whatever the sizes */
    for (int64_t i0 = 0; i0 < p[0]; i0++)
        for (int64_t i1 = 0; i1 < p[1]; i1++)
            for (int64_t i2 = 0; i2 < p[2]; i2++) {
                const float *row = src + i0 * st[0] + i1 * st[1] + i2 * st[2];
                int64_t step = st[3];
                AG__ADD_FLAT(!add, dst + o, p[3], row[i * step]);
                o += p[3];
            }
}

void ag__transpose_backward(ag_tensor *y)
{
    float *dx = ag__grad_of(node(y)->src[0]);
    if (!dx) return;
    swap_dims(dx, node(y)->gbuf, y->ndim, y->shape, (int)node(y)->arg.swap.dim0,
              (int)node(y)->arg.swap.dim1, true);
}

bool ag__transpose_forward(ag_tensor *y)
{
    const ag_tensor *x = node(y)->src[0];
    swap_dims(y->data, x->data, x->ndim, x->shape, (int)node(y)->arg.swap.dim0,
              (int)node(y)->arg.swap.dim1, false);
    return true;
}

static ag_tensor *transposed(int op, const char *name, const ag_tensor *x, int d0, int d1)
{
    int64_t shape[AG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    if (x->ndim > 0) {
        shape[d0] = x->shape[d1];
        shape[d1] = x->shape[d0];
    }
    ag_tensor *y = ag__new(name, x->ndim, shape, NULL, NULL);
    if (!y) return NULL;
    swap_dims(y->data, x->data, x->ndim, x->shape, d0, d1, false);
    node(y)->arg.swap.dim0 = d0;
    node(y)->arg.swap.dim1 = d1;
    return ag__record(y, op, x, NULL);
}

ag_tensor *ag_transpose(const ag_tensor *x, int dim0, int dim1)
{
    if (!ag__check(x, "transpose", "self")) return NULL;
    /* A 0-d x takes dims -1 and 0, as in PyTorch. */
    int rank = x->ndim > 0 ? x->ndim : 1;
    if ((dim0 = ag__wrap_dim("transpose", x, dim0, rank)) < 0 ||
        (dim1 = ag__wrap_dim("transpose", x, dim1, rank)) < 0)
        return NULL;
    return transposed(AG__OP_TRANSPOSE, "transpose", x, dim0, dim1);
}

ag_tensor *ag_t(const ag_tensor *x)
{
    if (!ag__check(x, "t", "self")) return NULL;
    if (x->ndim > 2) {
        char s[AG__SHAPE_STR];
        return ag__error("t: t() expects a tensor with <= 2 dimensions, but self is %dD (shape "
                         "%s)",
                         x->ndim, ag__tensor_str(s, x));
    }
    return transposed(AG__OP_T, "t", x, 0, x->ndim == 2 ? 1 : 0);
}

/* ------------------------------------------------------------------------------------ */
/* inverse: Y = A^-1                       dA = -Y^T G Y^T                               */

/* Inverts the n x n matrix m in place: Gauss-Jordan elimination with partial pivoting,
 * the row swaps undone as column swaps at the end. piv and colmax have room for n
 * values. Returns 0, or k + 1 when the k-th pivot is zero: LAPACK's "diagonal element
 * k + 1 of U is zero", which PyTorch reports. A pivot within double rounding of zero,
 * relative to the largest element of its column, counts as zero: an exactly singular
 * matrix such as [[1, 2, 3], [4, 5, 6], [7, 8, 9]] leaves a residue of 1e-16 in double,
 * where PyTorch's float LU reaches an exact zero. */
static int64_t gauss_jordan(double *m, int64_t n, int64_t *piv, double *colmax)
{
    for (int64_t i = 0; i < n * n; i++)
        if (isnan(m[i])) { /* as LAPACK: NaN everywhere, no error */
            for (int64_t j = 0; j < n * n; j++) m[j] = NAN;
            return 0;
        }
    for (int64_t k = 0; k < n; k++) {
        colmax[k] = 0;
        for (int64_t i = 0; i < n; i++) colmax[k] = fmax(colmax[k], fabs(m[i * n + k]));
    }
    for (int64_t k = 0; k < n; k++) {
        int64_t r = k;
        for (int64_t i = k + 1; i < n; i++)
            if (fabs(m[i * n + k]) > fabs(m[r * n + k])) r = i;
        double pivot = m[r * n + k];
        if (pivot == 0 ||
            (isfinite(colmax[k]) && fabs(pivot) <= (double)n * DBL_EPSILON * colmax[k]))
            return k + 1;
        piv[k] = r;
        if (r != k)
            for (int64_t j = 0; j < n; j++) {
                double t = m[k * n + j];
                m[k * n + j] = m[r * n + j];
                m[r * n + j] = t;
            }
        /* Column k becomes column k of the inverse as the identity's column would. */
        m[k * n + k] = 1;
        for (int64_t j = 0; j < n; j++) m[k * n + j] /= pivot;
        for (int64_t i = 0; i < n; i++) {
            if (i == k) continue;
            double f = m[i * n + k];
            m[i * n + k] = 0;
            for (int64_t j = 0; j < n; j++) m[i * n + j] -= f * m[k * n + j];
        }
    }
    for (int64_t k = n; k-- > 0;)
        if (piv[k] != k)
            for (int64_t i = 0; i < n; i++) {
                double t = m[i * n + k];
                m[i * n + k] = m[i * n + piv[k]];
                m[i * n + piv[k]] = t;
            }
    return 0;
}

static void transpose_square(double *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) dst[j * n + i] = src[i * n + j];
}

void ag__inverse_backward(ag_tensor *y)
{
    ag_tensor *x = node(y)->src[0];
    int64_t n = y->shape[y->ndim - 1], nn = n * n;
    float *dx = ag__scratch_floats(x->numel), *t = ag__scratch_floats(nn);
    float *yt = ag__scratch_floats(nn);
    if (!dx || !t || !yt) return;
    memset(dx, 0, (size_t)x->numel * sizeof *dx);
    /* In PyTorch's order: Y^T (G Y^T), then negated; agrad's own kernels in every build. */
    for (int64_t off = 0; off < x->numel; off += nn) {
        memset(t, 0, (size_t)nn * sizeof *t);
        ag__mm_transpose(yt, y->data + off, n, n);
        ag__mm_nt(t, node(y)->gbuf + off, yt, n, n, n);
        ag__mm_tn(dx + off, y->data + off, t, n, n, n);
    }
    for (int64_t i = 0; i < x->numel; i++) dx[i] = -dx[i];
    ag__add_grad(x, dx);
}

ag_tensor *ag_inverse(const ag_tensor *x)
{
    char s[AG__SHAPE_STR];
    if (!ag__check(x, "inverse", "self")) return NULL;
    ag__tensor_str(s, x);
    if (x->ndim < 2)
        return ag__error("inverse: The input tensor A must have at least 2 dimensions. (shape "
                         "%s)",
                         s);
    int64_t n = x->shape[x->ndim - 1], rows = x->shape[x->ndim - 2];
    if (rows != n)
        return ag__error("inverse: A must be batches of square matrices, but they are %lld by "
                         "%lld matrices (shape %s)",
                         (long long)rows, (long long)n, s);
    int64_t nn = n * n; /* at most x's numel (or its nonzero sizes' product): no overflow */

    /* The work happens before the result is made, so that a singular matrix leaves
     * nothing on the tape. */
    double *m = NULL;
    int64_t *piv = NULL;
    if (x->numel > 0) {
        m = ag__malloc((size_t)(x->numel + n) * sizeof *m);
        piv = ag__malloc((size_t)n * sizeof *piv);
        if (!m || !piv) {
            ag__free(m);
            ag__free(piv);
            return ag__error("inverse: out of memory for the work space of a matrix of shape %s",
                             s);
        }
    }
    /* PyTorch factors A^T (linalg.solve's choice for a row-major A): pivoting over it
     * finds the zero pivot PyTorch reports. A^-1 = (A^T)^-1^T. */
    for (int64_t off = 0; off < x->numel; off += nn) transpose_square(m + off, x->data + off, n);
    for (int64_t off = 0; off < x->numel; off += nn) {
        int64_t info = gauss_jordan(m + off, n, piv, m + x->numel);
        if (info) {
            char batch[48] = "";
            if (x->ndim > 2)
                snprintf(batch, sizeof batch, "(Batch element %lld): ", (long long)(off / nn));
            ag__free(m);
            ag__free(piv);
            return ag__error("inverse: %sThe diagonal element %lld is zero, the inversion could "
                             "not be completed because the input matrix is singular. (shape %s)",
                             batch, (long long)info, s);
        }
    }
    /* If the result cannot be made, the handler hears of it after m and piv are freed. */
    ag__defer_begin();
    ag_tensor *y = ag__new_like("inverse", x);
    if (y) {
        for (int64_t off = 0; off < x->numel; off += nn)
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++)
                    y->data[off + i * n + j] = (float)m[off + j * n + i];
        y = ag__record(y, AG__OP_INVERSE, x, NULL);
    }
    ag__free(m);
    ag__free(piv);
    ag__defer_end();
    return y;
}
