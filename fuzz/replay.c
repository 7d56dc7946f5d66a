/* The fuzz targets without libFuzzer: replays every file of the directories (or the
 * files) given through LLVMFuzzerTestOneInput, one TAP line each, as the test suite does
 * over the committed corpora and fuzz/regressions. A failure aborts, as under libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replayed;

/* Replays one input file; 0 if it cannot be read. */
static int replay(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    printf("ok %d - %s\n", ++replayed, path);
    return 1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            if (!replay(argv[i])) {
                fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
                return 2;
            }
            continue;
        }
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            replay(path);
        }
        closedir(d);
    }
    printf("1..%d\n", replayed);
    return 0;
}
