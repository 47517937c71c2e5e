/*
 * version.h - the gateway's version, and the build it came from.
 *
 * IG_VERSION is this tree's release. IG_BUILD names the build: the Makefile
 * may pass -DIG_BUILD="\"$(git describe --always --dirty)\"" (or a date);
 * without it, and without .git, it is "unknown", so a tarball still
 * builds. Both appear in `infergate --version` and in /metrics as
 * infergate_build_info{version="...",build="..."} 1.
 */
#ifndef INFERGATE_VERSION_H
#define INFERGATE_VERSION_H

#define IG_VERSION "0.1.0"

#ifndef IG_BUILD
#define IG_BUILD "unknown"
#endif

#endif /* INFERGATE_VERSION_H */
