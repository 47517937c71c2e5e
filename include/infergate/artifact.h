/*
 * artifact.h - what a SageMaker model's PrimaryContainer names: the kind of
 * image (a built-in algorithm served in process, a model container reached
 * over HTTP, or a bring-your-own serve program), and its ModelDataUrl made
 * usable on local disk (a model.tar.gz unpacked safely, or a plain file
 * used in place). DESIGN.md "Model artifacts".
 *
 * Pure functions of their arguments and the file system: thread-safe, and
 * meant for a worker thread (ig_artifact_fetch reads and writes files; never
 * call it on the event loop). No global state but the limits below.
 */
#ifndef INFERGATE_ARTIFACT_H
#define INFERGATE_ARTIFACT_H

#include <stddef.h>
#include <stdint.h>

enum ig_image_kind {
    IG_IMAGE_BUILTIN = 0,   /* served in process: *algo names the algorithm */
    IG_IMAGE_CONTAINER = 1, /* http(s)://HOST:PORT[/...]: a running model container */
    IG_IMAGE_EXEC = 2,      /* file:///abs/path: a serve program to start */
};

/*
 * Classify ContainerDefinition.Image:
 *   "kmeans" | "pca" | "linear-learner" | "xgboost", or an image URI whose
 *   repository name (after the last '/', before ':TAG' or '@DIGEST') is one
 *   of them or "sagemaker-xgboost", e.g.
 *   382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1,
 *   683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1
 *     -> IG_IMAGE_BUILTIN, *algo = "kmeans", "pca", "linear-learner" or
 *        "xgboost" (static; the names of ig_model_algo_name);
 *   "http://HOST[:PORT][/...]" or "https://..." -> IG_IMAGE_CONTAINER;
 *   "file:///abs/path" -> IG_IMAGE_EXEC.
 * *algo is NULL unless BUILTIN. Names match exactly (lower case, as image
 * repositories are).
 * Errors: IG_ERR_INVALID with a message fit for a ValidationException that
 * quotes the image (at most 128 bytes, control bytes as '?') and says what
 * is accepted.
 */
int ig_artifact_classify(const char *image, enum ig_image_kind *kind, const char **algo, char *err,
                         size_t errlen);

/*
 * Make ModelDataUrl usable on local disk.
 *   "file:///path/model.tar.gz": a tar (gzip'd, as SageMaker writes it, or
 *     plain; recognised by its content, not its name) is unpacked into
 *     <dest_dir>, which must not exist (it is created 0700, and missing
 *     parents too) or be an empty directory.
 *   "file:///path" to any other regular file (model.json, xgboost-model):
 *     used in place; <dest_dir> is not touched.
 *   "file:///path" to a directory: used in place.
 * *path_out gets, for a BUILTIN <algo> ("kmeans", "pca", "linear-learner"):
 * the model.json at the archive's top level, else its only *.json file;
 * for "xgboost": the xgboost-model at the top level, else the archive's only
 * file; a plain file is itself the model; a directory must hold model.json
 * (xgboost-model) at its top. For <algo> NULL (EXEC and CONTAINER images):
 * the directory the model was unpacked into, or the plain file's directory,
 * or the directory itself.
 *
 * Unpacking is an attack surface (the URL comes from an API call): only
 * regular files and directories are written (symlinks, hard links, devices,
 * FIFOs are refused), never outside <dest_dir> (absolute names and '..'
 * components are refused, every directory is opened O_NOFOLLOW, every file
 * created O_EXCL|O_NOFOLLOW, 0600 plus the entry's owner execute bit); at
 * most IG_ARTIFACT_MAX_ENTRIES entries, names of at most
 * IG_ARTIFACT_MAX_NAME bytes, and IG_ARTIFACT_MAX_BYTES unpacked in all:
 * an entry whose declared size passes the cap is refused before a byte of
 * it is written, and bytes are counted as they are written. On any failure
 * what was unpacked is removed (<dest_dir> too when this call created it).
 *
 * Errors (messages name the URL, and the entry when there is one):
 *   IG_ERR_UNSUPPORTED "s3:// model data is not supported yet: use a
 *     file:// URL";
 *   IG_ERR_INVALID: another scheme, a relative or non-local file:// URL, a
 *     missing file, a bad or refused archive entry, a corrupt archive, no
 *     model file (or several candidates) for <algo>, a non-empty <dest_dir>;
 *   IG_ERR_TOOBIG: a cap above, or *path_out longer than pathlen;
 *   IG_ERR_IO: a local file system call failed;  IG_ERR_NOMEM.
 */
int ig_artifact_fetch(const char *url, const char *algo, const char *dest_dir, char *path_out,
                      size_t pathlen, char *err, size_t errlen);

#define IG_ARTIFACT_MAX_ENTRIES 10000u
#define IG_ARTIFACT_MAX_NAME 1024u
#define IG_ARTIFACT_MAX_BYTES (1ull << 30) /* 1 GiB unpacked */

/*
 * For tests: lower (or restore, with 0) the entry and byte caps of
 * ig_artifact_fetch. Process-wide; call it before fetching, not during.
 */
void ig_artifact_set_limits(uint64_t max_bytes, uint32_t max_entries);

#endif /* INFERGATE_ARTIFACT_H */
