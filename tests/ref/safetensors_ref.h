/* Made by tools/gen_ref_safetensors.py with PyTorch 1.13.0a0: the state_dicts written
 * to tests/ref/linear.safetensors and tests/ref/mlp.safetensors, in the models'
 * order (names, shapes, values), and each model's output for a fixed input. */
#ifndef SAFETENSORS_REF_H
#define SAFETENSORS_REF_H

typedef struct ref_param {
    const char *name;
    int ndim;
    int64_t shape[4];
    int64_t numel;
    const float *values;
} ref_param;

static const float linear_weight[] = {
    -0.00432251766f, 0.309715837f, -0.475185335f, -0.424894601f, -0.222368971f, 0.154820725f,
};
static const float linear_bias[] = {
    -0.0114391446f, 0.457774937f,
};
static const ref_param linear_params[] = {
    {"weight", 2, {2, 3}, 6, linear_weight},
    {"bias", 1, {2}, 2, linear_bias},
};
enum { linear_nparams = 2 };
static const float linear_x[] = {
    1.0f, -2.0f, 0.5f, 0.25f, 3.0f, -1.5f,
};
static const int64_t linear_x_shape[2] = {2, 3};
static const float linear_y[] = {
    -0.872785985f, 0.555028617f, 1.62940574f, -0.547786653f,
};

static const float mlp_0_weight[] = {
    -0.0627515167f, 0.187109336f, -0.213696912f, -0.138992712f, -0.675533414f, -0.468304157f,
    -0.291485757f, 0.0261937603f,
};
static const float mlp_0_bias[] = {
    0.279544204f, 0.424280167f, -0.479376733f, -0.307918727f,
};
static const float mlp_2_weight[] = {
    0.181608558f, 0.415193975f, -0.102900088f, 0.374155879f,
};
static const float mlp_2_bias[] = {
    -0.0805916786f,
};
static const ref_param mlp_params[] = {
    {"0.weight", 2, {4, 2}, 8, mlp_0_weight},
    {"0.bias", 1, {4}, 4, mlp_0_bias},
    {"2.weight", 2, {1, 4}, 4, mlp_2_weight},
    {"2.bias", 1, {1}, 1, mlp_2_bias},
};
enum { mlp_nparams = 4 };
static const float mlp_x[] = {
    0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f,
};
static const int64_t mlp_x_shape[2] = {3, 2};
static const float mlp_y[] = {
    -0.02457425f, -0.226641506f, 0.208896697f,
};

#endif
