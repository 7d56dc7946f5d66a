/* Datasets and the DataLoader: to be written (issue 9). */
#include "internal.h"

void ag__data_reset(void) {}
