/* agrad data: to be written (issue 9). */
#ifndef AGRAD_DATA_H
#define AGRAD_DATA_H

#include "agrad.h"

#endif /* AGRAD_DATA_H */
