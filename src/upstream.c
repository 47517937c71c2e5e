/*
 * upstream.c - pick the backend for a model URL.
 */
#include <stdio.h>
#include <string.h>

#include "infergate/common.h"
#include "infergate/upstream.h"

int ig_upstream_open(const char *url, const struct ig_upstream_env *env, struct ig_upstream **out,
                     char *err, size_t errlen)
{
    static const char file_scheme[] = "file://";

    if (strncmp(url, file_scheme, sizeof(file_scheme) - 1) == 0)
        return ig_upstream_local_open(url + sizeof(file_scheme) - 1, env, out, err, errlen);
    snprintf(err, errlen, "model '%s': only file:// models are served by this build", url);
    return IG_ERR_UNSUPPORTED;
}
