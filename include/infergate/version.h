/*
 * version.h - the gateway's version, and the build it came from.
 *
 * IG_VERSION is this tree's release. IG_BUILD names the build: the Makefile
 * writes it (git describe --always --dirty) into a generated build.h;
 * without it, and without .git, it is "unknown", so a tarball still
 * builds. Both appear in `infergate --version` and in /metrics as
 * infergate_build_info{version="...",build="..."} 1.
 */
#ifndef INFERGATE_VERSION_H
#define INFERGATE_VERSION_H

#define IG_VERSION "0.1.0"

/* The Makefile writes build/.../gen/infergate/build.h with IG_BUILD. */
#if !defined(IG_BUILD) && defined(__has_include)
#if __has_include("infergate/build.h")
#include "infergate/build.h"
#endif
#endif
#ifndef IG_BUILD
#define IG_BUILD "unknown"
#endif

#endif /* INFERGATE_VERSION_H */
