/* The library as a whole: ag_shutdown, above every part it resets. */
#include "internal.h"

void ag_shutdown(void)
{
    if (ag__deferring()) {
        /* Called from a user function that backward, gradcheck or a loader runs: what
         * they hold would be freed under them. */
        ag__error("ag_shutdown: " AG__INSIDE);
        return;
    }
    ag__data_reset();
    ag__progress_reset();
    ag__optim_reset();
    ag__modules_reset();
    ag__replay_reset();
    ag__names_reset();
    ag__engine_reset();
    ag__watch_reset();
    ag__random_reset();
    ag__warning_reset();
    ag__memory_reset();
    ag__error_reset();
}
