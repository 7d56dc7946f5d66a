/* PyTorch's CPU random streams: one global mt19937 and the transforms torch.rand,
 * torch.randn, uniform_, normal_ and torch.randperm apply to it, so that a lab ported
 * to C sees the same data, initial weights and shuffles after the same manual_seed.
 * The algorithms are PyTorch 1.13's (its mt19937, and the transforms in ATen's
 * TransformationHelper.h, DistributionsHelper.h, cpu/DistributionTemplates.h and randperm
 * in TensorFactories.cpp); tests/test_random.c checks them against PyTorch's values.
 *
 * On an AVX2 machine PyTorch runs these kernels compiled with FMA enabled, and the
 * compiler fuses a * b + c: where PyTorch's source reads x * (to - from) + from, the
 * values it produces are fmaf(x, to - from, from). The fmaf/fma calls below reproduce
 * that (checked against PyTorch 1.13); unfused arithmetic differs in the last bit for
 * about half the elements of uniform_(-1.15, 1.15). No other expression here has an
 * a * b + c a compiler could fuse, so the results do not depend on compiler flags. */
#include "internal.h"

#include <float.h>
#include <math.h>

enum { MT_M = 397 };

/* The seed of a new torch.Generator(). PyTorch seeds its global generator from
 * /dev/urandom at startup; agrad starts from this fixed seed instead, so that a run
 * without ag_manual_seed repeats. */
#define DEFAULT_SEED UINT64_C(67280421310721)

static const double PI = 3.14159265358979323846;

/* The global generator. Zero-initialised, so "not seeded yet" needs no constructor and
 * ag__random_reset (called by ag_shutdown) is two stores; the default seed is applied on
 * first use. The loader's per-epoch generators are other ag__mt states run by the same
 * code (ag__mt_seed, mt_next). */
static ag__mt rng;

void ag__mt_seed(ag__mt *g, uint64_t seed)
{
    /* Only the low 32 bits count, as in PyTorch (manual_seed(2**32 + 5) == seed 5). */
    g->state[0] = (uint32_t)seed;
    for (uint32_t i = 1; i < AG__MT_N; i++) {
        uint32_t prev = g->state[i - 1];
        g->state[i] = 1812433253u * (prev ^ (prev >> 30)) + i;
    }
    g->next = AG__MT_N;
    g->seeded = true;
    g->have_normal = false;
}

/* PyTorch's generator->random(): one tempered 32-bit output of g. */
static uint32_t mt_next(ag__mt *g)
{
    if (!g->seeded) ag__mt_seed(g, DEFAULT_SEED);
    if (g->next >= AG__MT_N) {
        /* Updating in place, in index order, is what the reference mt19937 does: the
         * last MT_M words already read their new neighbours. */
        for (int i = 0; i < AG__MT_N; i++) {
            uint32_t y = (g->state[i] & 0x80000000u) | (g->state[(i + 1) % AG__MT_N] & 0x7fffffffu);
            g->state[i] =
                g->state[(i + MT_M) % AG__MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        g->next = 0;
    }
    uint32_t y = g->state[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* A float in [0, 1) on the 2^-24 grid: every value is exact, so no rounding choice. */
static float uniform_float(void) { return (float)(mt_next(&rng) & 0xffffffu) * 0x1p-24f; }

/* PyTorch's generator->random64(): two outputs, the FIRST one the high half. */
static uint64_t random64(ag__mt *g)
{
    uint64_t hi = mt_next(g);
    return (hi << 32) | mt_next(g);
}

uint64_t ag__random64(void) { return random64(&rng); }

/* A double in [0, 1) from random64(). */
static double uniform_double(void)
{
    return (double)(random64(&rng) & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

/* One standard normal sample of at::normal_distribution<double>. PyTorch caches the
 * sine half in the generator, so the next small normal draw, even in a later call,
 * takes it without drawing. PyTorch 1.13 takes log(1 - u2), not log1p(-u2): the two
 * differ in float64 results. */
static double normal_double(void)
{
    if (rng.have_normal) {
        rng.have_normal = false;
        return rng.normal;
    }
    double u1 = uniform_double();
    double u2 = uniform_double();
    double r = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * PI * u1;
    rng.normal = r * sin(theta);
    rng.have_normal = true;
    return r * cos(theta);
}

/* Box-Muller on 16 uniforms in place: d[j] and d[j + 8] pair up, as in PyTorch's
 * normal_fill_16 (AVX2: one 8-lane vector each). PyTorch's vectorised log/sin/cos are
 * not libm's, so results agree to about 1e-6, not bit for bit. */
static void normal_fill_16(float *d, float mean, float std)
{
    const float two_pi = (float)(2.0 * PI);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j]; /* (0, 1]: log(0) never happens */
        float u2 = d[j + 8];
        float r = sqrtf(-2.0f * logf(u1));
        float theta = two_pi * u2;
        d[j] = fmaf(r * cosf(theta), std, mean);
        d[j + 8] = fmaf(r * sinf(theta), std, mean);
    }
}

static void fill_normal(float *d, int64_t n, double mean, double std)
{
    if (n < 16) {
        /* PyTorch's element-by-element path, in double, rounded once at the end. */
        for (int64_t i = 0; i < n; i++) d[i] = (float)fma(normal_double(), std, mean);
        return;
    }
    for (int64_t i = 0; i < n; i++) d[i] = uniform_float();
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(d + i, (float)mean, (float)std);
    if (n % 16 != 0) {
        /* PyTorch redoes the last 16 elements with 16 fresh uniforms rather than
         * handling a short block, so the partial block's first draws are discarded. */
        float *tail = d + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_float();
        normal_fill_16(tail, (float)mean, (float)std);
    }
}

static void fill_uniform(float *d, int64_t n, float from, float to)
{
    for (int64_t i = 0; i < n; i++) d[i] = fmaf(uniform_float(), to - from, from);
}

/* Position swapped with i in step i of randperm(n): one 32-bit draw reduced modulo
 * the number of positions left, slightly biased as in PyTorch, which this must match. */
static int64_t randperm_pick(ag__mt *g, int64_t n, int64_t i)
{
    return i + (int64_t)(mt_next(g) % (uint64_t)(n - i));
}

void ag__randperm_into(ag__mt *g, int64_t *out, int64_t n)
{
    if (!g) g = &rng;
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = 0; i < n - 1; i++) {
        int64_t z = randperm_pick(g, n, i), v = out[i];
        out[i] = out[z];
        out[z] = v;
    }
}

void ag__random_reset(void)
{
    rng.seeded = false;
    rng.have_normal = false;
}

AG_API void ag_manual_seed(uint64_t seed) { ag__mt_seed(&rng, seed); }

AG_API ag_tensor *ag_rand_with(ag_new_args a)
{
    ag_tensor *t = ag__new_leaf("rand", a.shape, a.requires_grad);
    if (t) fill_uniform(t->data, t->numel, 0.0f, 1.0f);
    return t;
}

AG_API ag_tensor *ag_randn_with(ag_new_args a)
{
    ag_tensor *t = ag__new_leaf("randn", a.shape, a.requires_grad);
    if (t) fill_normal(t->data, t->numel, 0.0, 1.0);
    return t;
}

AG_API ag_tensor *ag_uniform_(ag_tensor *t, double from, double to)
{
    if (!ag__check(t, "uniform_", "self")) return NULL;
    /* Negated comparisons so that NaN bounds fail too, as they do in PyTorch. */
    if (!(from >= -FLT_MAX && from <= FLT_MAX))
        return ag__error("uniform_: from is out of bounds for float");
    if (!(to >= -FLT_MAX && to <= FLT_MAX))
        return ag__error("uniform_: to is out of bounds for float");
    if (from > to)
        return ag__error("uniform_: uniform_ expects to return a [from, to) range, but found "
                         "from=%g > to=%g",
                         from, to);
    if (to - from > FLT_MAX)
        return ag__error("uniform_: uniform_ expects to-from <= std::numeric_limits<Float>::max(), "
                         "but found to=%g and from=%g which result in to-from to exceed the limit",
                         to, from);
    /* After the argument checks, unlike PyTorch, because it bumps t's version: a
     * rejected call must not invalidate graphs that saved t. */
    if (!ag__inplace_begin(t, "uniform_")) return NULL;
    fill_uniform(t->data, t->numel, (float)from, (float)to);
    return t;
}

AG_API ag_tensor *ag_normal_(ag_tensor *t, double mean, double std)
{
    if (!ag__check(t, "normal_", "self")) return NULL;
    if (!(std >= 0.0))
        return ag__error("normal_: normal expects std >= 0.0, but found std %g", std);
    if (!ag__inplace_begin(t, "normal_")) return NULL; /* last, as in uniform_ */
    fill_normal(t->data, t->numel, mean, std);
    return t;
}

AG_API ag_tensor *ag_randperm(int64_t n)
{
    if (n < 0) return ag__error("randperm: n must be non-negative, got %lld", (long long)n);
    ag_tensor *t = ag__new("randperm", 1, &n, NULL, NULL);
    if (!t) return NULL;
    /* Shuffled in the float storage itself, so an epoch loop that calls randperm
     * allocates nothing beyond the tensor; floats hold the indices exactly up to 2^24. */
    float *d = t->data;
    for (int64_t i = 0; i < n; i++) d[i] = (float)i;
    for (int64_t i = 0; i < n - 1; i++) {
        int64_t z = randperm_pick(&rng, n, i);
        float v = d[i];
        d[i] = d[z];
        d[z] = v;
    }
    return t;
}
