/* Optimizers: to be written (issue 9). */
#include "internal.h"

void ag__optim_reset(void) {}
