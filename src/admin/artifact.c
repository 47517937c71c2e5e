/*
 * artifact.c - a model's image classified, and its ModelDataUrl made local:
 * a model.tar.gz unpacked with libarchive under caps, never outside its
 * directory, or a plain file used in place.
 *
 * Unpacking works on directory descriptors: dest_dir is opened once, every
 * directory below it is created by mkdirat and entered by openat with
 * O_DIRECTORY|O_NOFOLLOW, every file created by openat with
 * O_CREAT|O_EXCL|O_NOFOLLOW. Since nothing but regular files and
 * directories is ever created, and names with '..' or a leading '/' are
 * refused, no write can land outside dest_dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "infergate/artifact.h"
#include "infergate/common.h"

/* The caps ig_artifact_set_limits may lower (tests). */
static _Atomic uint64_t artifact_max_bytes = IG_ARTIFACT_MAX_BYTES;
static _Atomic uint32_t artifact_max_entries = IG_ARTIFACT_MAX_ENTRIES;

/* Longest piece of a caller-supplied string quoted back in a message. */
#define ARTIFACT_QUOTE_MAX 128
/* Read and write unit of the unpacking. */
#define ARTIFACT_CHUNK (64u * 1024)

void ig_artifact_set_limits(uint64_t max_bytes, uint32_t max_entries)
{
    atomic_store(&artifact_max_bytes, max_bytes ? max_bytes : IG_ARTIFACT_MAX_BYTES);
    atomic_store(&artifact_max_entries, max_entries ? max_entries : IG_ARTIFACT_MAX_ENTRIES);
}

__attribute__((format(printf, 4, 5))) static int artifact_errf(char *err, size_t errlen, int rv,
                                                               const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rv;
}

/* <s> fit to quote in a message: at most ARTIFACT_QUOTE_MAX bytes (then
 * "..."), control bytes as '?'. */
struct artifact_quote {
    char s[ARTIFACT_QUOTE_MAX + 4];
};

static const char *artifact_quote(struct artifact_quote *q, const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0' && n < ARTIFACT_QUOTE_MAX; n++) {
        unsigned char c = (unsigned char)s[n];

        q->s[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[n] != '\0') {
        memcpy(q->s + n, "...", 3);
        n += 3;
    }
    q->s[n] = '\0';
    return q->s;
}

/* ---- classify ------------------------------------------------------------ */

static const struct {
    const char *repo;
    const char *algo;
} artifact_builtins[] = {
    {"kmeans", "kmeans"},
    {"pca", "pca"},
    {"linear-learner", "linear-learner"},
    {"xgboost", "xgboost"},
    {"sagemaker-xgboost", "xgboost"},
};

static const char *artifact_builtin(const char *name, size_t len)
{
    for (size_t i = 0; i < IG_ARRAY_SIZE(artifact_builtins); i++)
        if (strlen(artifact_builtins[i].repo) == len &&
            memcmp(artifact_builtins[i].repo, name, len) == 0)
            return artifact_builtins[i].algo;
    return NULL;
}

/* http(s)://HOST[:PORT][/...]: a host of [A-Za-z0-9.-] or a bracketed IPv6
 * address, a port of 1..65535. */
static bool artifact_http_ok(const char *rest)
{
    const char *p = rest;

    if (*p == '[') {
        p = strchr(p, ']');
        if (p == NULL || p == rest + 1)
            return false;
        p++;
    } else {
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               *p == '.' || *p == '-' || *p == '_')
            p++;
        if (p == rest)
            return false;
    }
    if (*p == ':') {
        unsigned long port = 0;
        const char *d = ++p;

        while (*p >= '0' && *p <= '9' && p - d < 6)
            port = port * 10 + (unsigned long)(*p++ - '0');
        if (p == d || port == 0 || port > 65535)
            return false;
    }
    return *p == '\0' || *p == '/';
}

/* An image URI's repository name: after the last '/', before '@DIGEST' or
 * ':TAG'. */
static const char *artifact_repo(const char *image, size_t *len)
{
    const char *name = strrchr(image, '/'), *end;

    name = name ? name + 1 : image;
    end = strchr(name, '@');
    if (end == NULL)
        end = name + strlen(name);
    {
        const char *colon = memchr(name, ':', (size_t)(end - name));

        if (colon != NULL)
            end = colon;
    }
    *len = (size_t)(end - name);
    return name;
}

int ig_artifact_classify(const char *image, enum ig_image_kind *kind, const char **algo, char *err,
                         size_t errlen)
{
    struct artifact_quote q;
    const char *name, *a;
    size_t len;

    *kind = IG_IMAGE_BUILTIN;
    *algo = NULL;
    if (image == NULL || *image == '\0')
        return artifact_errf(err, errlen, IG_ERR_INVALID,
                             "PrimaryContainer.Image is empty: use a built-in algorithm (kmeans, "
                             "pca, linear-learner, xgboost or a SageMaker image URI of one), an "
                             "http(s)://HOST:PORT model container or a file:///path serve program");
    if (strncmp(image, "http://", 7) == 0 || strncmp(image, "https://", 8) == 0) {
        if (!artifact_http_ok(image + (image[4] == 's' ? 8 : 7)))
            return artifact_errf(err, errlen, IG_ERR_INVALID,
                                 "Image '%s' is not a valid model container URL: use "
                                 "http(s)://HOST:PORT[/PATH]",
                                 artifact_quote(&q, image));
        *kind = IG_IMAGE_CONTAINER;
        return 0;
    }
    if (strncmp(image, "file://", 7) == 0) {
        const char *path = image + 7;

        if (path[0] != '/' || path[1] == '\0' || path[strlen(path) - 1] == '/')
            return artifact_errf(err, errlen, IG_ERR_INVALID,
                                 "Image '%s' is not a valid serve program URL: use "
                                 "file:///ABSOLUTE/PATH of an executable",
                                 artifact_quote(&q, image));
        *kind = IG_IMAGE_EXEC;
        return 0;
    }
    if (strstr(image, "://") == NULL && strchr(image, ' ') == NULL) {
        name = artifact_repo(image, &len);
        a = artifact_builtin(name, len);
        if (a != NULL) {
            *algo = a;
            return 0;
        }
    }
    return artifact_errf(err, errlen, IG_ERR_INVALID,
                         "Image '%s' is not supported: use a built-in algorithm (kmeans, pca, "
                         "linear-learner, xgboost, or a SageMaker image URI of one such as "
                         "ACCOUNT.dkr.ecr.REGION.amazonaws.com/kmeans:1), an "
                         "http(s)://HOST:PORT model container or a file:///path serve program",
                         artifact_quote(&q, image));
}

/* ---- fetch --------------------------------------------------------------- */

/* What one fetch reports through and keeps track of. */
struct artifact_ctx {
    const char *url;
    const char *algo; /* NULL, or a built-in algorithm */
    char *err;
    size_t errlen;
    uint64_t max_bytes, total;
    uint32_t max_entries, nentries;
    /* the model file candidates, as entry names below dest_dir */
    bool top_model;   /* model.json / xgboost-model at the top level */
    uint32_t nfiles;  /* regular files */
    uint32_t njson;   /* *.json regular files */
    char *first_file; /* the first of each (malloc'd) */
    char *first_json;
};

/* "URL: message" */
__attribute__((format(printf, 3, 4))) static int artifact_fail(const struct artifact_ctx *ctx,
                                                               int rv, const char *fmt, ...)
{
    struct artifact_quote q;
    va_list ap;
    int n;

    if (ctx->err == NULL || ctx->errlen == 0)
        return rv;
    n = snprintf(ctx->err, ctx->errlen, "%s: ", artifact_quote(&q, ctx->url));
    if (n >= 0 && (size_t)n < ctx->errlen) {
        va_start(ap, fmt);
        vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rv;
}

static bool artifact_has_suffix(const char *s, const char *suffix)
{
    size_t l = strlen(s), sl = strlen(suffix);

    return l >= sl && memcmp(s + l - sl, suffix, sl) == 0;
}

static int artifact_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Normalise an entry name into <out> (same size or more): "./" prefixes,
 * "." and empty components dropped. Refuses an absolute name and any ".."
 * component (returns a reason, static), else NULL; <out> may end up empty
 * (the archive's root directory).
 */
static const char *artifact_clean_name(const char *name, char *out)
{
    const char *p = name;
    size_t n = 0;

    if (name[0] == '/')
        return "an absolute path is not allowed";
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);

        if (l == 2 && p[0] == '.' && p[1] == '.')
            return "a '..' component is not allowed";
        if (l > 0 && !(l == 1 && p[0] == '.')) {
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, p, l);
            n += l;
        }
        p += l;
        if (*p == '/')
            p++;
    }
    out[n] = '\0';
    return NULL;
}

/*
 * Open (creating when <create>) each directory of <path>'s first <dirs>
 * components below <root>, none followed if it is a symlink. Returns a new
 * descriptor of the last one (a dup of root when dirs is 0), or -1 with
 * errno set.
 */
static int artifact_open_dirs(int root, char *path, size_t ncomp, bool create)
{
    int fd = dup(root);
    char *p = path;

    for (size_t i = 0; i < ncomp && fd != -1; i++) {
        char *slash = strchr(p, '/');
        int next;

        if (slash)
            *slash = '\0';
        if (create && mkdirat(fd, p, 0700) == -1 && errno != EEXIST) {
            int e = errno;

            close(fd);
            if (slash)
                *slash = '/';
            errno = e;
            return -1;
        }
        next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        {
            int e = errno;

            close(fd);
            errno = e;
        }
        if (slash) {
            *slash = '/';
            p = slash + 1;
        }
        fd = next;
    }
    return fd;
}

static size_t artifact_count_slashes(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += *s == '/';
    return n;
}

/* Remember <name> (a regular file) as a model file candidate. */
static void artifact_note_file(struct artifact_ctx *ctx, const char *name)
{
    const char *want = NULL;

    if (ctx->algo != NULL)
        want = strcmp(ctx->algo, "xgboost") == 0 ? "xgboost-model" : "model.json";
    if (want != NULL && strcmp(name, want) == 0)
        ctx->top_model = true;
    if (ctx->nfiles++ == 0)
        ctx->first_file = ig_xstrdup(name);
    if (artifact_has_suffix(name, ".json") && ctx->njson++ == 0)
        ctx->first_json = ig_xstrdup(name);
}

/* Unpack one regular file's data into <fd>, counting against the cap. */
static int artifact_copy(struct artifact_ctx *ctx, struct archive *a, int fd, const char *name,
                         char *buf)
{
    struct artifact_quote q;

    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, ARTIFACT_CHUNK);

        if (n == 0)
            return 0;
        if (n < 0)
            return artifact_fail(ctx, IG_ERR_INVALID, "entry '%s': cannot read: %s",
                                 artifact_quote(&q, name), archive_error_string(a));
        if ((uint64_t)n > ctx->max_bytes - ctx->total)
            return artifact_fail(ctx, IG_ERR_TOOBIG,
                                 "entry '%s': more than %llu bytes unpacked in all",
                                 artifact_quote(&q, name), (unsigned long long)ctx->max_bytes);
        if (artifact_write_all(fd, buf, (size_t)n) == -1)
            return artifact_fail(ctx, IG_ERR_IO, "entry '%s': cannot write: %s",
                                 artifact_quote(&q, name), strerror(errno));
        ctx->total += (uint64_t)n;
    }
}

/* A directory that cannot be made or entered: the archive's fault (a file
 * or a link in the way) or the file system's. */
static int artifact_dir_errno(void)
{
    return errno == ENOTDIR || errno == ELOOP || errno == EEXIST ? IG_ERR_INVALID : IG_ERR_IO;
}

/* One archive entry, checked and written below <root>. */
static int artifact_entry(struct artifact_ctx *ctx, struct archive *a, struct archive_entry *e,
                          int root, char *buf)
{
    struct artifact_quote q;
    const char *raw = archive_entry_pathname(e), *why, *leaf;
    char name[IG_ARTIFACT_MAX_NAME + 1];
    mode_t type = archive_entry_filetype(e);
    size_t ncomp;
    int dfd = -1, fd = -1, rv;

    if (raw == NULL)
        return artifact_fail(ctx, IG_ERR_INVALID, "entry %u has no name (or one not valid UTF-8)",
                             ctx->nentries);
    if (++ctx->nentries > ctx->max_entries)
        return artifact_fail(ctx, IG_ERR_TOOBIG, "more than %u entries (at '%s')", ctx->max_entries,
                             artifact_quote(&q, raw));
    if (strlen(raw) > IG_ARTIFACT_MAX_NAME)
        return artifact_fail(ctx, IG_ERR_TOOBIG, "entry '%s': a name over %u bytes",
                             artifact_quote(&q, raw), IG_ARTIFACT_MAX_NAME);
    why = artifact_clean_name(raw, name);
    if (why != NULL)
        return artifact_fail(ctx, IG_ERR_INVALID, "entry '%s': %s", artifact_quote(&q, raw), why);
    if (archive_entry_hardlink(e) != NULL)
        return artifact_fail(ctx, IG_ERR_INVALID, "entry '%s': a hard link is not allowed",
                             artifact_quote(&q, raw));
    if (type == AE_IFLNK)
        return artifact_fail(ctx, IG_ERR_INVALID, "entry '%s': a symbolic link is not allowed",
                             artifact_quote(&q, raw));
    if (type != AE_IFREG && type != AE_IFDIR)
        return artifact_fail(ctx, IG_ERR_INVALID,
                             "entry '%s': only regular files and directories are allowed "
                             "(not a device, FIFO or socket)",
                             artifact_quote(&q, raw));
    if (name[0] == '\0') {
        if (type == AE_IFDIR)
            return 0; /* "./": dest_dir itself */
        return artifact_fail(ctx, IG_ERR_INVALID, "entry '%s': a file without a name",
                             artifact_quote(&q, raw));
    }
    if (type == AE_IFDIR) {
        dfd = artifact_open_dirs(root, name, artifact_count_slashes(name) + 1, true);
        if (dfd == -1)
            return artifact_fail(ctx, artifact_dir_errno(),
                                 "entry '%s': cannot create the directory: %s",
                                 artifact_quote(&q, raw), strerror(errno));
        close(dfd);
        return 0;
    }
    /* A regular file: refused whole when its declared size passes the cap. */
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        (uint64_t)archive_entry_size(e) > ctx->max_bytes - ctx->total)
        return artifact_fail(ctx, IG_ERR_TOOBIG,
                             "entry '%s': %lld bytes, more than %llu bytes unpacked in all",
                             artifact_quote(&q, raw), (long long)archive_entry_size(e),
                             (unsigned long long)ctx->max_bytes);
    ncomp = artifact_count_slashes(name);
    dfd = artifact_open_dirs(root, name, ncomp, true);
    if (dfd == -1)
        return artifact_fail(ctx, artifact_dir_errno(),
                             "entry '%s': cannot create its directory: %s", artifact_quote(&q, raw),
                             strerror(errno));
    leaf = strrchr(name, '/');
    leaf = leaf ? leaf + 1 : name;
    fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                (mode_t)(0600 | (archive_entry_perm(e) & 0100)));
    if (fd == -1) {
        rv = artifact_fail(ctx, errno == EEXIST ? IG_ERR_INVALID : IG_ERR_IO,
                           "entry '%s': cannot create: %s%s", artifact_quote(&q, raw),
                           strerror(errno), errno == EEXIST ? " (a duplicate entry)" : "");
        goto out;
    }
    rv = artifact_copy(ctx, a, fd, raw, buf);
    if (rv == 0 && close(fd) == -1)
        rv = artifact_fail(ctx, IG_ERR_IO, "entry '%s': cannot write: %s", artifact_quote(&q, raw),
                           strerror(errno));
    fd = -1;
    if (rv == 0)
        artifact_note_file(ctx, name);
out:
    if (fd != -1)
        close(fd);
    close(dfd);
    return rv;
}

static int artifact_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    if (flag == FTW_DP) {
        if (ftw->level > 0)
            rmdir(path);
    } else {
        unlink(path);
    }
    return 0;
}

/* Remove what an unpack wrote: dest_dir's contents, and dest_dir itself
 * when this fetch created it. Only regular files and directories are
 * there (nothing else is ever created), and nftw does not follow links. */
static void artifact_cleanup(const char *dest_dir, bool created)
{
    nftw(dest_dir, artifact_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (created)
        rmdir(dest_dir);
}

/* Whether directory <path> holds nothing; -1 with errno when unreadable. */
static int artifact_dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int empty = 1;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

/* mkdir -p of dest_dir's parents (0700), then of dest_dir; or accept an
 * existing empty directory. *created: this call made dest_dir. */
static int artifact_make_dest(struct artifact_ctx *ctx, const char *dest_dir, bool *created)
{
    char path[4096];
    struct stat st;
    size_t len = dest_dir ? strlen(dest_dir) : 0;
    int empty;

    *created = false;
    if (len == 0 || len >= sizeof(path))
        return artifact_fail(ctx, IG_ERR_INVALID, "no directory to unpack into");
    memcpy(path, dest_dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) == -1 && errno != EEXIST)
            return artifact_fail(ctx, IG_ERR_IO, "cannot create %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(dest_dir, 0700) == 0) {
        *created = true;
        return 0;
    }
    if (errno != EEXIST)
        return artifact_fail(ctx, IG_ERR_IO, "cannot create %s: %s", dest_dir, strerror(errno));
    if (lstat(dest_dir, &st) == -1 || !S_ISDIR(st.st_mode))
        return artifact_fail(ctx, IG_ERR_INVALID, "%s exists and is not a directory", dest_dir);
    empty = artifact_dir_empty(dest_dir);
    if (empty < 0)
        return artifact_fail(ctx, IG_ERR_IO, "cannot read %s: %s", dest_dir, strerror(errno));
    if (!empty)
        return artifact_fail(ctx, IG_ERR_INVALID, "the unpack directory %s is not empty", dest_dir);
    return 0;
}

static int artifact_pick(struct artifact_ctx *ctx, const char *dest_dir, char *path_out,
                         size_t pathlen);
static int artifact_join(struct artifact_ctx *ctx, const char *dir, const char *name,
                         char *path_out, size_t pathlen);

/* Unpack the tar at <path> (gzip'd or not) into dest_dir, and find the
 * model in it. */
static int artifact_unpack(struct artifact_ctx *ctx, const char *path, const char *dest_dir,
                           char *path_out, size_t pathlen)
{
    struct archive *a = NULL;
    struct archive_entry *e;
    char *buf = NULL;
    bool created = false;
    int root = -1, rv;

    rv = artifact_make_dest(ctx, dest_dir, &created);
    if (rv < 0)
        return rv;
    root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root == -1) {
        rv = artifact_fail(ctx, IG_ERR_IO, "cannot open %s: %s", dest_dir, strerror(errno));
        goto out;
    }
    buf = ig_try_malloc(ARTIFACT_CHUNK);
    a = archive_read_new();
    if (buf == NULL || a == NULL) {
        rv = artifact_fail(ctx, IG_ERR_NOMEM, "out of memory to unpack");
        goto out;
    }
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, ARTIFACT_CHUNK) != ARCHIVE_OK) {
        rv = artifact_fail(ctx, IG_ERR_INVALID, "not a gzip'd tar: %s", archive_error_string(a));
        goto out;
    }
    for (;;) {
        int r = archive_read_next_header(a, &e);

        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rv = artifact_fail(ctx, IG_ERR_INVALID, "not a valid gzip'd tar (after %u entries): %s",
                               ctx->nentries, archive_error_string(a));
            goto out;
        }
        rv = artifact_entry(ctx, a, e, root, buf);
        if (rv < 0)
            goto out;
    }
    rv = ctx->algo == NULL ? artifact_join(ctx, dest_dir, NULL, path_out, pathlen)
                           : artifact_pick(ctx, dest_dir, path_out, pathlen);
out:
    if (a != NULL)
        archive_read_free(a);
    ig_free(&buf);
    if (root != -1)
        close(root);
    if (rv < 0)
        artifact_cleanup(dest_dir, created);
    return rv;
}

/* "<dir>/<name>" into path_out. */
static int artifact_join(struct artifact_ctx *ctx, const char *dir, const char *name,
                         char *path_out, size_t pathlen)
{
    size_t dl = strlen(dir);
    int n;

    while (dl > 1 && dir[dl - 1] == '/') /* "file:///models/": no "//" */
        dl--;
    n = name ? snprintf(path_out, pathlen, "%.*s/%s", (int)dl, dir, name)
             : snprintf(path_out, pathlen, "%.*s", (int)dl, dir);

    if (n < 0 || (size_t)n >= pathlen)
        return artifact_fail(ctx, IG_ERR_TOOBIG, "the model's path is over %zu bytes", pathlen);
    return 0;
}

/* The model file of a built-in algorithm among what was unpacked. */
static int artifact_pick(struct artifact_ctx *ctx, const char *dest_dir, char *path_out,
                         size_t pathlen)
{
    bool xgb = strcmp(ctx->algo, "xgboost") == 0;
    const char *want = xgb ? "xgboost-model" : "model.json";

    if (ctx->top_model)
        return artifact_join(ctx, dest_dir, want, path_out, pathlen);
    if (xgb && ctx->nfiles == 1)
        return artifact_join(ctx, dest_dir, ctx->first_file, path_out, pathlen);
    if (!xgb && ctx->njson == 1)
        return artifact_join(ctx, dest_dir, ctx->first_json, path_out, pathlen);
    if (xgb)
        return artifact_fail(ctx, IG_ERR_INVALID,
                             "no xgboost-model at the archive's top level, and %u files, not one "
                             "(an %s model needs xgboost-model)",
                             ctx->nfiles, ctx->algo);
    return artifact_fail(ctx, IG_ERR_INVALID,
                         "no model.json at the archive's top level, and %u *.json files, not "
                         "one (a %s model needs model.json)",
                         ctx->njson, ctx->algo);
}

/* Whether the file at <fd> starts like a gzip stream or a tar. */
static int artifact_is_archive(int fd)
{
    unsigned char h[512];
    size_t len = 0;

    while (len < sizeof(h)) {
        ssize_t n = read(fd, h + len, sizeof(h) - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return -1;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len >= 2 && h[0] == 0x1f && h[1] == 0x8b)
        return 1;
    return len >= 262 && memcmp(h + 257, "ustar", 5) == 0;
}

int ig_artifact_fetch(const char *url, const char *algo, const char *dest_dir, char *path_out,
                      size_t pathlen, char *err, size_t errlen)
{
    struct artifact_ctx ctx = {
        .url = url ? url : "",
        .algo = algo,
        .err = err,
        .errlen = errlen,
        .max_bytes = atomic_load(&artifact_max_bytes),
        .max_entries = atomic_load(&artifact_max_entries),
    };
    const char *path, *want;
    struct stat st;
    int fd = -1, rv, arch;

    if (path_out != NULL && pathlen > 0)
        path_out[0] = '\0';
    if (url == NULL || *url == '\0')
        return artifact_errf(err, errlen, IG_ERR_INVALID,
                             "ModelDataUrl is empty: use a file:///path URL");
    if (strncmp(url, "s3://", 5) == 0)
        return artifact_errf(err, errlen, IG_ERR_UNSUPPORTED,
                             "s3:// model data is not supported yet: use a file:// URL");
    if (strncmp(url, "file://", 7) != 0)
        return artifact_fail(&ctx, IG_ERR_INVALID,
                             "ModelDataUrl must be a file:///path URL (s3:// is not supported "
                             "yet)");
    path = url + 7;
    if (path[0] != '/')
        return artifact_fail(&ctx, IG_ERR_INVALID,
                             "a file:// URL needs an absolute local path: file:///path");
    if (path_out == NULL || pathlen == 0)
        return artifact_fail(&ctx, IG_ERR_TOOBIG, "no room for the model's path");

    /* O_NONBLOCK: opening a FIFO must not block (and reads of one, or of a
     * /proc file that would block, fail instead); regular files ignore it.
     * The loader is one thread: one stuck read would stop every deployment. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1)
        return artifact_fail(&ctx, errno == ENOENT || errno == ENOTDIR ? IG_ERR_INVALID : IG_ERR_IO,
                             "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) == -1) {
        rv = artifact_fail(&ctx, IG_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        /* A directory: the model, as unpacked already. */
        if (algo == NULL) {
            rv = artifact_join(&ctx, path, NULL, path_out, pathlen);
            goto out;
        }
        want = strcmp(algo, "xgboost") == 0 ? "xgboost-model" : "model.json";
        rv = artifact_join(&ctx, path, want, path_out, pathlen);
        if (rv == 0 && access(path_out, R_OK) != 0)
            rv = artifact_fail(&ctx, IG_ERR_INVALID, "the directory has no readable %s", want);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rv = artifact_fail(&ctx, IG_ERR_INVALID, "%s is not a regular file", path);
        goto out;
    }
    {
        struct statfs sf;

        if (fstatfs(fd, &sf) == 0 && (sf.f_type == PROC_SUPER_MAGIC || sf.f_type == SYSFS_MAGIC)) {
            rv = artifact_fail(&ctx, IG_ERR_INVALID, "%s is in /proc or /sys, not a model file",
                               path);
            goto out;
        }
    }
    arch = artifact_is_archive(fd);
    if (arch < 0) {
        rv = artifact_fail(&ctx, IG_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!arch) {
        /* A plain file, used in place. */
        if (algo != NULL) {
            rv = artifact_join(&ctx, path, NULL, path_out, pathlen);
        } else {
            const char *slash = strrchr(path, '/');
            int n =
                snprintf(path_out, pathlen, "%.*s", (int)(slash == path ? 1 : slash - path), path);

            rv = n < 0 || (size_t)n >= pathlen
                     ? artifact_fail(&ctx, IG_ERR_TOOBIG, "the model's path is over %zu bytes",
                                     pathlen)
                     : 0;
        }
        goto out;
    }
    close(fd);
    fd = -1;
    rv = artifact_unpack(&ctx, path, dest_dir, path_out, pathlen);
out:
    if (rv < 0 && path_out != NULL && pathlen > 0)
        path_out[0] = '\0';
    if (fd != -1)
        close(fd);
    ig_free(&ctx.first_file);
    ig_free(&ctx.first_json);
    return rv;
}
