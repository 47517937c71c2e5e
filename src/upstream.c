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
    static const char file_scheme[] = "file://", sm_scheme[] = "sagemaker://";

    if (strncmp(url, file_scheme, sizeof(file_scheme) - 1) == 0)
        return ig_upstream_local_open(url + sizeof(file_scheme) - 1, env, out, err, errlen);
    if (strncmp(url, sm_scheme, sizeof(sm_scheme) - 1) == 0)
        return ig_upstream_sagemaker_open(url + sizeof(sm_scheme) - 1, env, out, err, errlen);
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        return ig_upstream_container_open(url, env, out, err, errlen);
    snprintf(err, errlen, "model '%s': unknown scheme (file://, http(s)://, sagemaker://)", url);
    return IG_ERR_UNSUPPORTED;
}
