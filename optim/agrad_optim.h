/* agrad optim: to be written (issue 9). */
#ifndef AGRAD_OPTIM_H
#define AGRAD_OPTIM_H

#include "agrad_nn.h"

#endif /* AGRAD_OPTIM_H */
