/* The safetensors fuzz target: each input is a file, given to ag_safetensors_load_bytes
 * for a fixed set of destination tensors. A load that fails must say why and leave every
 * destination as it was, bit for bit; a load that succeeds must survive a round trip
 * (ag_safetensors_save_bytes of what was loaded loads back into fresh tensors, bit for
 * bit, and is itself what saving those gives again). Each input is loaded a second time
 * with an allocator that refuses after a number of allocations taken from the input, so
 * that every out-of-memory path is crossed; and after ag_shutdown no byte may remain
 * allocated (cJSON's allocations go through agrad's hook). AddressSanitizer and UBSan
 * abort on everything else.
 *
 * Built with libFuzzer by meson -Dfuzz=enabled (CC=clang): build/fuzz/fuzz_safetensors.
 * With fuzz/replay.c instead it is fuzz_safetensors_replay, which the test suite runs over
 * fuzz/corpus_safetensors. */
#include <agrad_nn.h>

#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The destinations: what a small model's state_dict holds, a 0-d and an empty tensor. */
enum { NDEST = 5 };
static const char *const names[NDEST] = {"weight", "bias", "0.weight", "s", "e"};

static void make(ag_tensor **t)
{
    t[0] = ag_full(AG_SHAPE(2, 3), 1.5, .requires_grad = true);
    t[1] = ag_full(AG_SHAPE(2), -2.0, .requires_grad = true);
    t[2] = ag_full(AG_SHAPE(4, 2), 0.25);
    t[3] = ag_scalar(7.0, true);
    t[4] = ag_zeros(AG_SHAPE(0, 3));
    for (int i = 0; i < NDEST; i++)
        if (!t[i]) fail("making a destination failed");
}

static bool same(ag_tensor *const *a, ag_tensor *const *b, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(a[i]->data, b[i]->data, (size_t)a[i]->numel * sizeof(float))) return false;
    return true;
}

/* Loads the input into the first n destinations (the two of a Linear, or all). */
static void load_once(const uint8_t *data, size_t size, int n, bool oom)
{
    ag_tensor *t[NDEST], *before[NDEST];
    make(t);
    make(before);
    ag_clear_error();
    if (oom) cap.refuse_after = (long)(size % 23);
    bool ok = ag_safetensors_load_bytes(data, size, names, t, n);
    cap.refuse_after = -1;
    if (!ok) {
        if (!ag_last_error()[0]) fail("load failed without a message");
        if (!same(t, before, NDEST)) fail("a failed load changed a tensor");
        return;
    }
    if (ag_last_error()[0]) fail("load succeeded with a message");
    size_t size1, size2;
    void *saved = ag_safetensors_save_bytes(names, t, n, &size1);
    if (!saved) fail("saving what was loaded failed");
    ag_tensor *again[NDEST];
    make(again);
    if (!ag_safetensors_load_bytes(saved, size1, names, again, n))
        fail("what was saved does not load");
    if (!same(t, again, n)) fail("the round trip changed a value");
    void *resaved = ag_safetensors_save_bytes(names, again, n, &size2);
    if (!resaved || size1 != size2 || memcmp(saved, resaved, size1))
        fail("saving the same tensors twice gave different bytes");
    ag_free(saved);
    ag_free(resaved);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_start("fuzz_safetensors", 64 << 20, 256 << 20);
    for (int pass = 0; pass < 2; pass++) {
        load_once(data, size, 2, pass == 1);
        load_once(data, size, NDEST, pass == 1);
    }
    fuzz_finish();
    return 0;
}
