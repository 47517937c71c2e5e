/*
 * test_artifact.c - image classification, and ModelDataUrl unpacking: good
 * archives (built here with libarchive's writer, and with tar(1) as
 * SageMaker's "tar czf model.tar.gz ." does) give the model file to load;
 * hostile ones (.., absolute names, links, devices, too many entries, long
 * names, a 2 GiB sparse bomb) are refused with messages naming the URL and
 * the entry, fast, leaving nothing behind.
 *
 * Run from the repository root (make test-unit does), or set IG_SRCDIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "infergate/artifact.h"
#include "infergate/common.h"
#include "infergate/model.h"

#define ERRLEN 1024
#define KMEANS_JSON "{\"algorithm\":\"kmeans\",\"feature_dim\":2,\"centroids\":[[0,0],[4,4]]}"

static char tmp[64]; /* this run's scratch directory */

static const char *test_path(const char *rel)
{
    static char path[4096];
    const char *root = getenv("IG_SRCDIR");

    snprintf(path, sizeof(path), "%s/%s", root ? root : ".", rel);
    return path;
}

/* tmp/<rel> in a rotating static buffer (four live at once). */
static const char *at(const char *rel)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];

    snprintf(b, sizeof(bufs[0]), "%s/%s", tmp, rel);
    return b;
}

/* file://tmp/<rel> */
static const char *url(const char *rel)
{
    static char b[600];

    snprintf(b, sizeof(b), "file://%s/%s", tmp, rel);
    return b;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/test_artifact_XXXXXX");
    assert_non_null(mkdtemp(tmp));
    ig_artifact_set_limits(0, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ig_artifact_set_limits(0, 0);
    return 0;
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);

    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

/* ---- archives written with libarchive ----------------------------------- */

enum ent_type { E_FILE, E_DIR, E_SYMLINK, E_HARDLINK, E_FIFO, E_CHR };

struct ent {
    const char *name;
    enum ent_type type;
    const char *data; /* E_FILE: contents; links: the target */
    size_t len;       /* E_FILE: length of data (strlen when 0) */
};

/* A gzip'd pax tar at <path> with <n> entries. */
static void make_tgz(const char *path, const struct ent *ents, size_t n)
{
    struct archive *a = archive_write_new();

    assert_non_null(a);
    assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        size_t len = ents[i].len ? ents[i].len : (ents[i].data ? strlen(ents[i].data) : 0);

        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_perm(e, 0644);
        switch (ents[i].type) {
        case E_FILE:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)len);
            break;
        case E_DIR:
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            break;
        case E_SYMLINK:
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, ents[i].data);
            break;
        case E_HARDLINK:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, ents[i].data);
            break;
        case E_FIFO:
            archive_entry_set_filetype(e, AE_IFIFO);
            break;
        case E_CHR:
            archive_entry_set_filetype(e, AE_IFCHR);
            archive_entry_set_rdev(e, 0x0103); /* /dev/null's */
            break;
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (ents[i].type == E_FILE && len > 0)
            assert_int_equal(archive_write_data(a, ents[i].data, len), (la_ssize_t)len);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* Fetch tmp/<archive> into tmp/<dest>: the result; path_out and err. */
static int fetch(const char *archive, const char *algo, const char *dest, char *out, char *err)
{
    out[0] = err[0] = '\0';
    return ig_artifact_fetch(url(archive), algo, at(dest), out, 512, err, ERRLEN);
}

/* A refused archive: <rv>, the message "URL: <msg>", and nothing left. */
static void refused(const char *archive, const char *algo, int rv, const char *msg)
{
    char out[512], err[ERRLEN], want[ERRLEN];

    if (fetch(archive, algo, "out", out, err) != rv)
        fail_msg("%s: not %d: %s", archive, rv, err);
    snprintf(want, sizeof(want), "%s: %s", url(archive), msg);
    assert_string_equal(err, want);
    assert_string_equal(out, "");
    assert_false(exists(at("out")));
}

/* ---- classify ------------------------------------------------------------- */

static void test_classify(void **state)
{
    static const struct {
        const char *image;
        enum ig_image_kind kind;
        const char *algo;
    } ok[] = {
        {"kmeans", IG_IMAGE_BUILTIN, "kmeans"},
        {"pca", IG_IMAGE_BUILTIN, "pca"},
        {"linear-learner", IG_IMAGE_BUILTIN, "linear-learner"},
        {"xgboost", IG_IMAGE_BUILTIN, "xgboost"},
        {"382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1", IG_IMAGE_BUILTIN, "kmeans"},
        {"382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:latest", IG_IMAGE_BUILTIN, "pca"},
        {"382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1", IG_IMAGE_BUILTIN,
         "linear-learner"},
        {"683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", IG_IMAGE_BUILTIN,
         "xgboost"},
        {"811284229777.dkr.ecr.us-east-1.amazonaws.com/xgboost:1", IG_IMAGE_BUILTIN, "xgboost"},
        {"174872318107.dkr.ecr.us-west-2.amazonaws.com/kmeans", IG_IMAGE_BUILTIN, "kmeans"},
        {"382416733822.dkr.ecr.us-east-1.amazonaws.com/pca@sha256:0123abcd", IG_IMAGE_BUILTIN,
         "pca"},
        {"localhost:5000/team/kmeans:2", IG_IMAGE_BUILTIN, "kmeans"},
        {"xgboost:1.7-1", IG_IMAGE_BUILTIN, "xgboost"},
        {"http://127.0.0.1:8080", IG_IMAGE_CONTAINER, NULL},
        {"http://model-host:8080/", IG_IMAGE_CONTAINER, NULL},
        {"https://models.example.com/v1", IG_IMAGE_CONTAINER, NULL},
        {"http://[::1]:9000", IG_IMAGE_CONTAINER, NULL},
        {"file:///opt/model/serve", IG_IMAGE_EXEC, NULL},
    };
    static const char *const junk[] = {
        "kmeanz",
        "KMeans",
        "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans-custom:1",
        "382416733822.dkr.ecr.us-east-1.amazonaws.com/",
        "ftp://host/kmeans",
        "s3://bucket/kmeans",
        "http://",
        "http://host:0",
        "http://host:65536",
        "http://host:80x",
        "http://ho st:80",
        "file://relative/serve",
        "file:///",
        "file:///opt/dir/",
        "kmeans extra",
    };
    enum ig_image_kind kind;
    const char *algo;
    char err[ERRLEN], want[ERRLEN];

    (void)state;
    for (size_t i = 0; i < IG_ARRAY_SIZE(ok); i++) {
        err[0] = '\0';
        algo = "junk";
        if (ig_artifact_classify(ok[i].image, &kind, &algo, err, sizeof(err)) != 0)
            fail_msg("%s: %s", ok[i].image, err);
        assert_int_equal(kind, ok[i].kind);
        if (ok[i].algo == NULL)
            assert_null(algo);
        else
            assert_string_equal(algo, ok[i].algo);
    }
    for (size_t i = 0; i < IG_ARRAY_SIZE(junk); i++) {
        err[0] = '\0';
        algo = "junk";
        if (ig_artifact_classify(junk[i], &kind, &algo, err, sizeof(err)) != IG_ERR_INVALID)
            fail_msg("%s: accepted", junk[i]);
        assert_null(algo);
        snprintf(want, sizeof(want), "Image '%s' ", junk[i]);
        assert_memory_equal(err, want, strlen(want));
    }
    /* The full messages. */
    assert_int_equal(ig_artifact_classify("tensorflow:2", &kind, &algo, err, sizeof(err)),
                     IG_ERR_INVALID);
    assert_string_equal(err,
                        "Image 'tensorflow:2' is not supported: use a built-in algorithm (kmeans, "
                        "pca, linear-learner, xgboost, or a SageMaker image URI of one such as "
                        "ACCOUNT.dkr.ecr.REGION.amazonaws.com/kmeans:1), an "
                        "http(s)://HOST:PORT model container or a file:///path serve program");
    assert_int_equal(ig_artifact_classify("http://host:99999", &kind, &algo, err, sizeof(err)),
                     IG_ERR_INVALID);
    assert_string_equal(err, "Image 'http://host:99999' is not a valid model container URL: use "
                             "http(s)://HOST:PORT[/PATH]");
    assert_int_equal(ig_artifact_classify("file://x", &kind, &algo, err, sizeof(err)),
                     IG_ERR_INVALID);
    assert_string_equal(err, "Image 'file://x' is not a valid serve program URL: use "
                             "file:///ABSOLUTE/PATH of an executable");
    assert_int_equal(ig_artifact_classify("", &kind, &algo, err, sizeof(err)), IG_ERR_INVALID);
    assert_string_equal(err, "PrimaryContainer.Image is empty: use a built-in algorithm "
                             "(kmeans, pca, linear-learner, xgboost or a SageMaker image URI "
                             "of one), an http(s)://HOST:PORT model container or a "
                             "file:///path serve program");
    assert_int_equal(ig_artifact_classify(NULL, &kind, &algo, NULL, 0), IG_ERR_INVALID);
    /* A long image with control bytes is quoted cut, and printable. */
    {
        char img[400];

        memset(img, 'a', sizeof(img) - 1);
        img[sizeof(img) - 1] = '\0';
        img[3] = '\n';
        assert_int_equal(ig_artifact_classify(img, &kind, &algo, err, sizeof(err)), IG_ERR_INVALID);
        assert_memory_equal(err, "Image 'aaa?aaaa", 15);
        assert_non_null(strstr(err, "aaa...' is not supported"));
        assert_null(strchr(err, '\n'));
    }
}

/* ---- fetch: good archives ------------------------------------------------- */

static void test_fetch_kmeans(void **state)
{
    const struct ent ents[] = {
        {"model.json", E_FILE, KMEANS_JSON, 0},
        {"README", E_FILE, "notes", 0},
    };
    char out[512], err[ERRLEN];
    struct ig_model *m = NULL;
    struct stat st;

    (void)state;
    make_tgz(at("model.tar.gz"), ents, 2);
    assert_int_equal(fetch("model.tar.gz", "kmeans", "out", out, err), 0);
    assert_string_equal(out, at("out/model.json"));
    assert_int_equal(ig_model_load_file(out, &m, err, sizeof(err)), 0);
    assert_int_equal(ig_model_algo(m), IG_ALGO_KMEANS);
    assert_int_equal(ig_model_k(m), 2);
    ig_model_free(m);
    /* 0700 directory, 0600 files. */
    assert_int_equal(stat(at("out"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Not again into the same, now non-empty, directory. */
    assert_int_equal(fetch("model.tar.gz", "kmeans", "out", out, err), IG_ERR_INVALID);
    assert_non_null(strstr(err, "the unpack directory"));
    assert_non_null(strstr(err, "is not empty"));
    assert_true(exists(at("out/model.json"))); /* untouched */
    /* algo NULL: the directory; an existing empty one is fine, parents are
     * made. */
    assert_int_equal(mkdir(at("empty"), 0755), 0);
    assert_int_equal(fetch("model.tar.gz", NULL, "empty", out, err), 0);
    assert_string_equal(out, at("empty"));
    assert_true(exists(at("empty/README")));
    assert_int_equal(fetch("model.tar.gz", NULL, "a/b/c", out, err), 0);
    assert_string_equal(out, at("a/b/c"));
    assert_true(exists(at("a/b/c/model.json")));
}

/* As SageMaker writes it: tar czf model.tar.gz -C dir . ("./" names). */
static void test_fetch_tar_cli(void **state)
{
    char cmd[1024], out[512], err[ERRLEN];
    struct ig_model *m = NULL;
    size_t len;
    char *bin = read_file(test_path("tests/data/xgb-binary.model"), &len);

    (void)state;
    assert_int_equal(mkdir(at("src"), 0755), 0);
    write_file(at("src/xgboost-model"), bin, len);
    free(bin);
    snprintf(cmd, sizeof(cmd), "tar -C %s -czf %s .", at("src"), at("model.tar.gz"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(fetch("model.tar.gz", "xgboost", "out", out, err), 0);
    assert_string_equal(out, at("out/xgboost-model"));
    assert_int_equal(ig_model_load_file(out, &m, err, sizeof(err)), 0);
    assert_int_equal(ig_model_algo(m), IG_ALGO_XGBOOST);
    assert_int_equal(ig_model_dim(m), 3);
    ig_model_free(m);
    /* A plain (not gzip'd) tar too. */
    snprintf(cmd, sizeof(cmd), "tar -C %s -cf %s .", at("src"), at("model.tar"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(fetch("model.tar", "xgboost", "out2", out, err), 0);
    assert_string_equal(out, at("out2/xgboost-model"));
}

static void test_fetch_pick(void **state)
{
    const struct ent subdir[] = {
        {"model", E_DIR, NULL, 0},
        {"model/pca.json", E_FILE, "{}", 0},
        {"model/weights.bin", E_FILE, "x", 0},
    };
    const struct ent two_json[] = {
        {"a/model.json", E_FILE, "{}", 0},
        {"b/model.json", E_FILE, "{}", 0},
    };
    const struct ent one_file[] = {{"dir/booster.bin", E_FILE, "xyz", 0}};
    const struct ent no_file[] = {{"dir", E_DIR, NULL, 0}};
    char out[512], err[ERRLEN];

    (void)state;
    /* The only *.json, in a subdirectory. */
    make_tgz(at("sub.tar.gz"), subdir, 3);
    assert_int_equal(fetch("sub.tar.gz", "pca", "ok", out, err), 0);
    assert_string_equal(out, at("ok/model/pca.json"));
    /* xgboost: not the only file there. */
    refused("sub.tar.gz", "xgboost", IG_ERR_INVALID,
            "no xgboost-model at the archive's top level, and 2 files, not one (an xgboost "
            "model needs xgboost-model)");
    make_tgz(at("two.tar.gz"), two_json, 2);
    refused("two.tar.gz", "linear-learner", IG_ERR_INVALID,
            "no model.json at the archive's top level, and 2 *.json files, not one (a "
            "linear-learner model needs model.json)");
    /* xgboost: the only file, wherever it is. */
    make_tgz(at("one.tar.gz"), one_file, 1);
    assert_int_equal(fetch("one.tar.gz", "xgboost", "out3", out, err), 0);
    assert_string_equal(out, at("out3/dir/booster.bin"));
    make_tgz(at("none.tar.gz"), no_file, 1);
    refused("none.tar.gz", "kmeans", IG_ERR_INVALID,
            "no model.json at the archive's top level, and 0 *.json files, not one (a kmeans "
            "model needs model.json)");
}

/* A plain file or a directory is used in place. */
static void test_fetch_in_place(void **state)
{
    char out[512], err[ERRLEN];

    (void)state;
    write_file(at("model.json"), KMEANS_JSON, strlen(KMEANS_JSON));
    assert_int_equal(fetch("model.json", "kmeans", "out", out, err), 0);
    assert_string_equal(out, at("model.json"));
    assert_false(exists(at("out")));
    assert_int_equal(fetch("model.json", NULL, "out", out, err), 0);
    assert_string_equal(out, tmp);
    /* The directory. */
    assert_int_equal(fetch("", "kmeans", "out", out, err), 0);
    assert_string_equal(out, at("model.json"));
    assert_int_equal(fetch("", "xgboost", "out", out, err), IG_ERR_INVALID);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, ": the directory has no readable xgboost-model"));
    assert_int_equal(ig_artifact_fetch(url(""), NULL, NULL, out, sizeof(out), err, ERRLEN), 0);
    assert_string_equal(out, tmp);
    /* path_out too small. */
    assert_int_equal(ig_artifact_fetch(url("model.json"), "kmeans", NULL, out, 8, err, ERRLEN),
                     IG_ERR_TOOBIG);
    assert_string_equal(out, "");
}

/* ---- fetch: URLs ------------------------------------------------------------ */

static void test_fetch_urls(void **state)
{
    char out[512] = "x", err[ERRLEN], want[ERRLEN];

    (void)state;
    assert_int_equal(ig_artifact_fetch("s3://bucket/model.tar.gz", "kmeans", at("out"), out,
                                       sizeof(out), err, sizeof(err)),
                     IG_ERR_UNSUPPORTED);
    assert_string_equal(err, "s3:// model data is not supported yet: use a file:// URL");
    assert_string_equal(out, "");
    assert_int_equal(ig_artifact_fetch("https://host/model.tar.gz", "kmeans", at("out"), out,
                                       sizeof(out), err, sizeof(err)),
                     IG_ERR_INVALID);
    assert_string_equal(err, "https://host/model.tar.gz: ModelDataUrl must be a file:///path URL "
                             "(s3:// is not supported yet)");
    assert_int_equal(ig_artifact_fetch("file://relative/model.tar.gz", "kmeans", at("out"), out,
                                       sizeof(out), err, sizeof(err)),
                     IG_ERR_INVALID);
    assert_string_equal(err, "file://relative/model.tar.gz: a file:// URL needs an absolute "
                             "local path: file:///path");
    assert_int_equal(ig_artifact_fetch("", "kmeans", at("out"), out, sizeof(out), err, sizeof(err)),
                     IG_ERR_INVALID);
    assert_string_equal(err, "ModelDataUrl is empty: use a file:///path URL");
    assert_int_equal(fetch("missing.tar.gz", "kmeans", "out", out, err), IG_ERR_INVALID);
    snprintf(want, sizeof(want), "%s: cannot open %s: No such file or directory",
             url("missing.tar.gz"), at("missing.tar.gz"));
    assert_string_equal(err, want);
    /* A corrupt gzip stream. */
    write_file(at("bad.tar.gz"), "\x1f\x8b\x08\x00garbage garbage garbage", 27);
    assert_int_equal(fetch("bad.tar.gz", "kmeans", "out", out, err), IG_ERR_INVALID);
    print_message("corrupt: %s\n", err);
    assert_false(exists(at("out")));
    /* No error buffer at all. */
    assert_int_equal(ig_artifact_fetch("s3://b/k", NULL, at("out"), out, sizeof(out), NULL, 0),
                     IG_ERR_UNSUPPORTED);
}

/* ---- fetch: hostile archives --------------------------------------------- */

static void test_refuse_paths(void **state)
{
    const struct ent dotdot[] = {
        {"model.json", E_FILE, KMEANS_JSON, 0},
        {"../evil", E_FILE, "pwned", 0},
    };
    const struct ent deep[] = {{"a/b/../../../evil", E_FILE, "pwned", 0}};
    const struct ent absolute[] = {{"/tmp/evil-abs", E_FILE, "pwned", 0}};
    const struct ent dup[] = {
        {"model.json", E_FILE, KMEANS_JSON, 0},
        {"./model.json", E_FILE, "{}", 0},
    };
    const struct ent file_as_dir[] = {
        {"x", E_FILE, "f", 0},
        {"x/model.json", E_FILE, "{}", 0},
    };

    (void)state;
    make_tgz(at("dotdot.tar.gz"), dotdot, 2);
    refused("dotdot.tar.gz", "kmeans", IG_ERR_INVALID,
            "entry '../evil': a '..' component is not allowed");
    assert_false(exists(at("evil")));
    make_tgz(at("deep.tar.gz"), deep, 1);
    refused("deep.tar.gz", NULL, IG_ERR_INVALID,
            "entry 'a/b/../../../evil': a '..' component is not allowed");
    make_tgz(at("abs.tar.gz"), absolute, 1);
    refused("abs.tar.gz", NULL, IG_ERR_INVALID,
            "entry '/tmp/evil-abs': an absolute path is not allowed");
    assert_false(exists("/tmp/evil-abs"));
    make_tgz(at("dup.tar.gz"), dup, 2);
    refused("dup.tar.gz", "kmeans", IG_ERR_INVALID,
            "entry './model.json': cannot create: File exists (a duplicate entry)");
    make_tgz(at("fad.tar.gz"), file_as_dir, 2);
    refused("fad.tar.gz", "kmeans", IG_ERR_INVALID,
            "entry 'x/model.json': cannot create its directory: Not a directory");
}

static void test_refuse_types(void **state)
{
    const struct ent symlink[] = {
        {"model.json", E_SYMLINK, "/etc/passwd", 0},
    };
    /* A link to a directory, then a file through it: refused at the link. */
    const struct ent symdir[] = {
        {"d", E_SYMLINK, "/tmp", 0},
        {"d/evil", E_FILE, "pwned", 0},
    };
    const struct ent hardlink[] = {
        {"model.json", E_FILE, KMEANS_JSON, 0},
        {"copy.json", E_HARDLINK, "model.json", 0},
    };
    const struct ent fifo[] = {{"pipe", E_FIFO, NULL, 0}};
    const struct ent chr[] = {{"null", E_CHR, NULL, 0}};

    (void)state;
    make_tgz(at("sym.tar.gz"), symlink, 1);
    refused("sym.tar.gz", "kmeans", IG_ERR_INVALID,
            "entry 'model.json': a symbolic link is not allowed");
    make_tgz(at("symdir.tar.gz"), symdir, 2);
    refused("symdir.tar.gz", NULL, IG_ERR_INVALID, "entry 'd': a symbolic link is not allowed");
    make_tgz(at("hard.tar.gz"), hardlink, 2);
    refused("hard.tar.gz", "kmeans", IG_ERR_INVALID,
            "entry 'copy.json': a hard link is not allowed");
    make_tgz(at("fifo.tar.gz"), fifo, 1);
    refused("fifo.tar.gz", NULL, IG_ERR_INVALID,
            "entry 'pipe': only regular files and directories are allowed (not a device, FIFO "
            "or socket)");
    make_tgz(at("chr.tar.gz"), chr, 1);
    refused("chr.tar.gz", NULL, IG_ERR_INVALID,
            "entry 'null': only regular files and directories are allowed (not a device, FIFO "
            "or socket)");
}

static void test_refuse_caps(void **state)
{
    struct ent many[7];
    char names[7][16], longname[1100], want[1400];
    const struct ent lng[] = {{longname, E_FILE, "x", 0}};

    (void)state;
    for (int i = 0; i < 7; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d.txt", i);
        many[i] = (struct ent){names[i], E_FILE, "x", 0};
    }
    make_tgz(at("many.tar.gz"), many, 7);
    ig_artifact_set_limits(0, 6);
    refused("many.tar.gz", NULL, IG_ERR_TOOBIG, "more than 6 entries (at 'f6.txt')");
    ig_artifact_set_limits(0, 7);
    {
        char out[512], err[ERRLEN];

        assert_int_equal(fetch("many.tar.gz", NULL, "ok", out, err), 0);
    }
    ig_artifact_set_limits(0, 0);
    /* 1025 bytes of name (pax allows it). */
    memset(longname, 'n', 1025);
    longname[1025] = '\0';
    make_tgz(at("long.tar.gz"), lng, 1);
    snprintf(want, sizeof(want), "entry '%.128s...': a name over 1024 bytes", longname);
    refused("long.tar.gz", NULL, IG_ERR_TOOBIG, want);
    /* 1024 is fine (a path of directories: each name under NAME_MAX). */
    for (int i = 0; i < 1024; i++)
        longname[i] = i % 200 == 199 ? '/' : 'n';
    longname[1024] = '\0';
    make_tgz(at("long2.tar.gz"), lng, 1);
    {
        char out[512], err[ERRLEN];

        assert_int_equal(fetch("long2.tar.gz", NULL, "out2", out, err), 0);
    }
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 2 GiB file of zeros, sparse (tar -S): a few KiB of archive. Refused
 * at its header, at the real 1 GiB cap, before a byte is written. */
static void test_refuse_sparse_bomb(void **state)
{
    char cmd[1024];
    struct stat st;
    double t0;
    int fd;

    (void)state;
    assert_int_equal(mkdir(at("src"), 0755), 0);
    fd = open(at("src/xgboost-model"), O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)2 << 30), 0);
    close(fd);
    snprintf(cmd, sizeof(cmd), "tar -C %s -S -czf %s xgboost-model", at("src"), at("bomb.tar.gz"));
    assert_int_equal(system(cmd), 0);
    assert_int_equal(stat(at("bomb.tar.gz"), &st), 0);
    assert_true(st.st_size < 64 * 1024);
    t0 = now();
    refused("bomb.tar.gz", "xgboost", IG_ERR_TOOBIG,
            "entry 'xgboost-model': 2147483648 bytes, more than 1073741824 bytes unpacked in "
            "all");
    assert_true(now() - t0 < 2.0);
}

/* Many entries each under the cap add up past it: refused at the entry
 * that passes it, having written less than the cap. (The cap lowered to
 * 1 MiB; 5 entries of 300 KiB of zeros.) */
static void test_refuse_total(void **state)
{
    static char zeros[300 * 1024];
    struct ent ents[5];
    char names[5][16];

    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(names[i], sizeof(names[i]), "part%d", i);
        ents[i] = (struct ent){names[i], E_FILE, zeros, sizeof(zeros)};
    }
    make_tgz(at("parts.tar.gz"), ents, 5);
    ig_artifact_set_limits(1 << 20, 0);
    refused("parts.tar.gz", NULL, IG_ERR_TOOBIG,
            "entry 'part3': 307200 bytes, more than 1048576 bytes unpacked in all");
    ig_artifact_set_limits(0, 0);
}

/* Two fetches at once, from worker threads, into their own directories. */
struct fetch_thread {
    char dest[512];
    int rv;
};

static void *fetch_run(void *p)
{
    struct fetch_thread *f = p;
    char out[512], err[ERRLEN];

    f->rv = 0;
    for (int i = 0; i < 20 && f->rv == 0; i++) {
        char dest[600];

        snprintf(dest, sizeof(dest), "%s-%d", f->dest, i);
        f->rv = ig_artifact_fetch(url("model.tar.gz"), "kmeans", dest, out, sizeof(out), err,
                                  sizeof(err));
    }
    return NULL;
}

static void test_fetch_threads(void **state)
{
    const struct ent ents[] = {{"model.json", E_FILE, KMEANS_JSON, 0}};
    struct fetch_thread ft[2];
    pthread_t th[2];

    (void)state;
    make_tgz(at("model.tar.gz"), ents, 1);
    for (int i = 0; i < 2; i++) {
        snprintf(ft[i].dest, sizeof(ft[i].dest), "%s/t%d", tmp, i);
        assert_int_equal(pthread_create(&th[i], NULL, fetch_run, &ft[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(ft[i].rv, 0);
    }
    assert_true(exists(at("t1-19/model.json")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test_setup_teardown(test_fetch_kmeans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_tar_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_pick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_sparse_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_total, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_threads, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
