/* Private to data/: what the datasets (dataset.c) and the loader (loader.c) share. */
#ifndef AGRAD_DATA_INTERNAL_H
#define AGRAD_DATA_INTERNAL_H

#include "agrad_data.h"
#include "internal.h"

/* A dataset as it is read: the dataset whose get (or tensors) gives the items, and the
 * map from the positions of the dataset given to that one's indices. */
typedef struct ag__view {
    ag_dataset *root;                /* a dataset of the user's, or a TensorDataset */
    const ag_tensor *const *tensors; /* root's tensors when it is a TensorDataset */
    const int64_t *map;              /* a Subset's indices into root, or NULL */
    int64_t len;                     /* the items of the dataset given */
    int64_t root_len;                /* root's, which the map's indices must be below */
    int fields;                      /* tensors per item */
} ag__view;

/* Checks the dataset argument ds of op (NULL, freed, a tensor or a loader given as a
 * dataset, a dataset of the user's without fields or functions, released tensors, a
 * Subset of a freed dataset) and fills v, asking the lengths. False after an error. */
bool ag__dataset_view(const char *op, void *ds, ag__view *v);

/* The b items of v at positions first, ..., first + b - 1 (or order[first + j] when order
 * is not NULL), collated as default_collate does: out[k] is field k of the items stacked
 * along a new first dimension, a new tensor on the tape. The batches are made last, in
 * field order, after the item tensors. buf holds (b + 1) * fields pointers. False after an
 * error naming op, the dataset's index and the field. */
bool ag__dataset_collate(const char *op, const ag__view *v, const int64_t *order, int64_t first,
                         int64_t b, ag_tensor **buf, ag_tensor **out);

/* The outputs of a call that gives an item's or a batch's tensors (ag_dataset_get,
 * ag_dataset_slice, ag_next): ag__clear_outputs sets those given to NULL, first thing;
 * ag__check_outputs says whether there is one, not NULL, per field of v, and reports
 * otherwise. */
void ag__clear_outputs(ag_tensor **const *out, int n);
bool ag__check_outputs(const char *op, const ag__view *v, ag_tensor **const *out, int n);

/* Whether a user's get, len or destroy is running (called by agrad, inside a deferral
 * scope): the loaders and datasets agrad is reading must not be freed under it. */
bool ag__data_in_callback(void);

/* loader.c: whether p is a live loader; the loaders over a freed dataset ds report it
 * from then on; every loader freed (ag_shutdown). */
bool ag__is_loader(const void *p);
void ag__loaders_dataset_freed(const void *ds);
void ag__loaders_reset(void);

#endif /* AGRAD_DATA_INTERNAL_H */
