/* Writes the reference models' weights (tests/ref/safetensors_ref.h) with
 * ag_safetensors_save, the names given in the models' order (not sorted), for
 * tests/check_safetensors.py to compare with what safetensors.torch.save_file writes.
 *
 *     write_safetensors linear|mlp OUT.safetensors */
#include <agrad_nn.h>

#include <stdio.h>
#include <string.h>

#include "ref/safetensors_ref.h"

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "linear") && strcmp(argv[1], "mlp"))) {
        fprintf(stderr, "usage: write_safetensors linear|mlp OUT.safetensors\n");
        return 2;
    }
    bool linear = !strcmp(argv[1], "linear");
    const ref_param *params = linear ? linear_params : mlp_params;
    int n = linear ? linear_nparams : mlp_nparams;
    const char *names[8];
    ag_tensor *tensors[8];
    for (int i = 0; i < n; i++) {
        ag_shape shape = {params[i].ndim, {0}};
        for (int d = 0; d < params[i].ndim; d++) shape.d[d] = params[i].shape[d];
        names[i] = params[i].name;
        tensors[i] = ag_tensor_from(params[i].values, shape, .requires_grad = true);
    }
    bool ok = ag_safetensors_save(argv[2], names, tensors, n); /* exits with a message if not */
    ag_shutdown();
    return !ok;
}
