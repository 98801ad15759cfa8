/*
 * The cgroup mounts the .NET runtime looks for, without reading the node's whole mount table.
 *
 * As a NativeAOT process starts, the GC (src/coreclr/gc/unix/cgroup.cpp) and the CPU count
 * (src/coreclr/nativeaot/Runtime/unix/cgroupcpu.cpp) each read /proc/self/mountinfo to the end,
 * 1 KiB a read(2), to find the cgroup hierarchy they then read limits from. A shim runs in the
 * node's mount namespace, where every pod adds its rootfs, shm and netns mounts: with 220 pods the
 * file is ~250 KiB, and those two reads were half of the shim's CPU per container start, paid twice
 * per container (the `start` command and the daemon).
 *
 * The shim is linked with --wrap=fopen64, so the runtime's fopen64 calls come here. For
 * /proc/self/mountinfo the answer is the cgroup mount lines those readers look for, at the places
 * the runtime itself assumes: it decides the cgroup version from statfs("/sys/fs/cgroup"), cgroup2
 * mounted there, or cgroup v1 with one hierarchy per controller under it (for v1 it looks for the
 * "memory" and "cpu" controllers). The cgroup's path still comes from /proc/self/cgroup, read as
 * before, so the runtime finds the same limits. Any other path is opened as usual.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>

#define CGROUP2_SUPER_MAGIC 0x63677270

FILE *__real_fopen64(const char *path, const char *mode);

static char cgroup2_mounts[] = "1 1 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
static char cgroup1_mounts[] =
    "1 1 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "1 1 0:1 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";

FILE *__wrap_fopen64(const char *path, const char *mode)
{
    struct statfs fs;
    if (strcmp(path, "/proc/self/mountinfo") != 0 || strcmp(mode, "r") != 0 || statfs("/sys/fs/cgroup", &fs) != 0)
    {
        return __real_fopen64(path, mode);
    }
    if (fs.f_type == CGROUP2_SUPER_MAGIC)
    {
        return fmemopen(cgroup2_mounts, sizeof cgroup2_mounts - 1, "r");
    }
    return fmemopen(cgroup1_mounts, sizeof cgroup1_mounts - 1, "r");
}
