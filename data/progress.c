/* The progress line (agrad_data.h): the line tqdm's format_meter makes, with its defaults
 * (unit "it", no unit scaling, the average rate), drawn in place on a terminal as tqdm's
 * status printer does: a carriage return, the line, and spaces over what is left of a
 * longer line before it. */
#include "internal.h"

#include "agrad_data.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct ag_progress {
    FILE *stream; /* NULL when not a terminal: nothing is drawn */
    double (*clock)(void);
    int64_t total, n;
    double start;
    double drawn_at;   /* when the line was drawn last, */
    int64_t drawn_n;   /* with this count */
    int64_t ncols;     /* the terminal's width; 0: unknown (a bar of 10, nothing cut) */
    int64_t last_cols; /* the width of the line drawn last */
    bool utf8;         /* the bar in Unicode blocks, else in tqdm's ASCII */
    char desc[];       /* "epoch 3: ", or "" */
};

/* The progress lines open, so that one closed already is reported, not read. */
static ag__live open_lines;

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Whether the locale's environment names UTF-8, as the C library would choose it. */
static bool utf8_locale(void)
{
    const char *names[] = {"LC_ALL", "LC_CTYPE", "LANG"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            for (; *v; v++)
                if (!strncasecmp(v, "utf-8", 5) || !strncasecmp(v, "utf8", 4)) return true;
            return false;
        }
    }
    return false;
}

/* Writes characters of s (UTF-8) while the line has room; counts the width drawn. */
typedef struct line {
    FILE *f;
    int64_t room; /* characters left; negative: no limit */
    int64_t cols;
} line;

static void put(line *l, const char *s)
{
    for (; *s; s++) {
        bool starts = ((unsigned char)*s & 0xc0) != 0x80;
        if (starts) {
            if (l->room == 0) return;
            if (l->room > 0) l->room--;
            l->cols++;
        }
        fputc(*s, l->f);
    }
}

/* The width of s in characters (UTF-8 code points; tqdm counts East Asian wide ones twice). */
static int64_t width(const char *s)
{
    int64_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* tqdm's format_interval: [H:]MM:SS of the whole seconds. */
static void interval(char buf[32], double t)
{
    long long s = 0; /* also for a clock gone back */
    if (t >= 1e15)
        s = (long long)1e15;
    else if (t > 0)
        s = (long long)t;
    if (s / 3600)
        snprintf(buf, 32, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, 32, "%02lld:%02lld", s / 60 % 60, s % 60);
}

static void draw(ag_progress *p, double now)
{
    p->drawn_at = now;
    p->drawn_n = p->n;
    double elapsed = now - p->start, rate = elapsed > 0 ? (double)p->n / elapsed : 0;
    char el[32], left[32] = "?", speed[48];
    interval(el, elapsed);
    if (rate > 0 && 1 / rate > 1)
        snprintf(speed, sizeof speed, "%5.2fs/it", 1 / rate);
    else if (rate > 0)
        snprintf(speed, sizeof speed, "%5.2fit/s", rate);
    else
        snprintf(speed, sizeof speed, "?it/s");
    bool known = p->total > 0 && p->n <= p->total; /* as tqdm: past the total, it is unknown */
    if (rate > 0) interval(left, known ? (double)(p->total - p->n) / rate : 0);

    line l = {p->stream, p->ncols ? p->ncols : -1, 0};
    fputc('\r', p->stream);
    if (!known) {
        char buf[160];
        l.room = -1; /* tqdm cuts only a line with a bar */
        put(&l, p->desc);
        snprintf(buf, sizeof buf, "%lldit [%s, %s]", (long long)p->n, el, speed);
        put(&l, buf);
    } else {
        double frac = (double)p->n / (double)p->total;
        char pct[16], right[160];
        snprintf(pct, sizeof pct, "%3.0f%%|", frac * 100);
        snprintf(right, sizeof right, "| %lld/%lld [%s<%s, %s]", (long long)p->n,
                 (long long)p->total, el, left, speed);
        int64_t bars = 10;
        if (p->ncols) {
            bars = p->ncols - width(p->desc) - width(pct) - width(right);
            if (bars < 1) bars = 1;
        }
        static const char *const utf[] = {" ",      "\u258f", "\u258e", "\u258d", "\u258c",
                                          "\u258b", "\u258a", "\u2589", "\u2588"};
        static const char *const ascii[] = {" ", "1", "2", "3", "4", "5", "6", "7", "8", "9", "#"};
        const char *const *set = p->utf8 ? utf : ascii;
        int nsyms = p->utf8 ? 8 : 10;
        int64_t whole = (int64_t)(frac * (double)bars * nsyms);
        int64_t full = whole / nsyms;
        put(&l, p->desc);
        put(&l, pct);
        for (int64_t i = 0; i < full && l.room; i++) put(&l, set[nsyms]);
        if (full < bars) put(&l, set[whole % nsyms]);
        for (int64_t i = full + 1; i < bars && l.room; i++) put(&l, set[0]);
        put(&l, right);
    }
    for (int64_t i = l.cols; i < p->last_cols; i++) fputc(' ', p->stream);
    p->last_cols = l.cols;
    (void)fflush(p->stream); /* a terminal that cannot be written to: nothing to do */
}

ag_progress *ag_progress_new_with(ag_progress_args a)
{
    if (a.total < 0)
        return ag__error("progress_new: total must be >= 0 (0: unknown), got %lld",
                         (long long)a.total);
    const char *desc = a.desc ? a.desc : "";
    size_t len = strlen(desc);
    bool colon = len && !(len >= 2 && !strcmp(desc + len - 2, ": "));
    ag_progress *p = ag__malloc(sizeof *p + len + 3);
    if (!p || !ag__live_add(&open_lines, p)) {
        ag__free(p);
        return ag__error("progress_new: out of memory");
    }
    FILE *f = a.stream ? a.stream : stderr;
    int fd = fileno(f);
    *p = (ag_progress){.stream = fd >= 0 && isatty(fd) ? f : NULL,
                       .clock = a.private_clock ? a.private_clock : monotonic,
                       .total = a.total};
    memcpy(p->desc, desc, len);
    memcpy(p->desc + len, colon ? ": " : "", colon ? 3 : 1);
    if (!p->stream) return p;
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0) p->ncols = ws.ws_col;
    p->utf8 = utf8_locale();
    p->start = p->clock();
    draw(p, p->start);
    return p;
}

/* Whether p may be used by op: NULL (false, nothing to do) or an open line. */
static bool open_line(const ag_progress *p, const char *op)
{
    if (!p) return false;
    if (ag__live_has(&open_lines, p)) return true;
    ag__error("%s: the progress line is not open (closed by ag_progress_close or ag_shutdown)", op);
    return false;
}

bool ag_progress_update(ag_progress *p, int64_t n)
{
    if (!open_line(p, "progress_update")) return !p;
    if (n < 0) return ag__error("progress_update: n must be >= 0, got %lld", (long long)n), false;
    p->n = n > INT64_MAX - p->n ? INT64_MAX : p->n + n;
    if (!p->stream || p->n == p->drawn_n) return true;
    double now = p->clock();
    if (now - p->drawn_at >= 0.1) draw(p, now); /* as tqdm with miniters=1, mininterval=0.1 */
    return true;
}

void ag_progress_close(ag_progress *p)
{
    if (!open_line(p, "progress_close")) return;
    if (p->stream) {
        draw(p, p->clock());
        fputc('\n', p->stream);
        (void)fflush(p->stream);
    }
    ag__live_remove(&open_lines, p);
    ag__free(p);
}

void ag__progress_reset(void)
{
    for (size_t i = 0; i < open_lines.n; i++) ag__free(open_lines.p[i]);
    ag__live_clear(&open_lines);
}
